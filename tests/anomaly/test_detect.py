"""The batched baseline and run detection on synthetic daily series with planted changes."""

from __future__ import annotations

import numpy as np
import pytest

from costwarden.anomaly.baseline import fit_baselines
from costwarden.anomaly.detect import Detection, Thresholds, detect_runs

DAYS = 84
CHECKED = 14
FIRST = DAYS - CHECKED
WEEKLY = np.where(np.arange(DAYS) % 7 >= 5, 0.7, 1.0)
DEFAULT = Thresholds(
    z_threshold=5.0, continue_z=2.5, min_impact=50.0, min_percent=0.2, level_shift_min_days=3
)


def _noisy(level: float, count: int = 1, noise: float = 0.03, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level * WEEKLY * (1.0 + noise * rng.standard_normal((count, DAYS)))


def _detect(values: np.ndarray, thresholds: Thresholds = DEFAULT, **options: object) -> Detection:
    settings = {
        "baseline_days": 28,
        "season_weeks": 8,
        "min_history_days": 21,
        "scale_floor": 0.02,
        **options,
    }
    return detect_runs(np.atleast_2d(values), FIRST, thresholds, **settings)  # type: ignore[arg-type]


def test_spike_found_and_resolved() -> None:
    values = _noisy(1000.0)
    values[0, FIRST + 5] += 600.0

    detection = _detect(values)

    assert len(detection.runs) == 1
    run = detection.runs[0]
    assert (run.start, run.end) == (FIRST + 5, FIRST + 5)
    assert run.kind == "spike"
    assert not run.ongoing
    assert run.excess[0] == pytest.approx(600.0, rel=0.1)


def test_level_shift_measured_against_old_level() -> None:
    values = _noisy(1000.0)
    values[0, FIRST + 3 :] += 400.0 * WEEKLY[FIRST + 3 :]

    detection = _detect(values)

    assert len(detection.runs) == 1
    run = detection.runs[0]
    assert run.start == FIRST + 3
    assert run.kind == "level_shift"
    assert run.ongoing
    assert run.end == DAYS - 1
    expected_old = 1000.0 * WEEKLY[FIRST + 3 :]
    assert np.allclose(run.expected, expected_old, rtol=0.05)


def test_weekday_pattern_is_not_flagged() -> None:
    values = _noisy(1000.0, count=50, seed=4)

    detection = _detect(values)

    assert detection.runs == ()
    assert detection.checked_rows == 50


def test_steady_ramp_is_the_trend() -> None:
    ramp = 1000.0 * (1.0 + 0.01 * np.arange(DAYS)) * WEEKLY
    rng = np.random.default_rng(5)
    values = ramp * (1.0 + 0.02 * rng.standard_normal(DAYS))

    assert _detect(values).runs == ()


def test_small_scope_needs_minimum_impact() -> None:
    values = _noisy(40.0)
    values[0, FIRST + 6] *= 2.0

    assert _detect(values).runs == ()
    relaxed = Thresholds(5.0, 2.5, 10.0, 0.2, 3)
    assert len(_detect(values, relaxed).runs) == 1


def test_small_percentage_is_not_flagged() -> None:
    values = _noisy(100_000.0, noise=0.002)
    values[0, FIRST + 6] *= 1.1

    assert _detect(values, scale_floor=0.005).runs == ()
    relaxed = Thresholds(5.0, 2.5, 50.0, 0.05, 3)
    assert len(_detect(values, relaxed, scale_floor=0.005).runs) == 1


def test_scale_floor_keeps_flat_series_quiet() -> None:
    values = np.full((1, DAYS), 1000.0)
    values[0, FIRST + 6] = 1015.0
    relaxed = Thresholds(5.0, 2.5, 0.0, 0.0, 3)

    assert _detect(values, relaxed).runs == ()
    assert len(_detect(values, relaxed, scale_floor=0.0).runs) == 1


def test_short_history_is_not_judged() -> None:
    values = _noisy(1000.0)
    values[0, : FIRST - 10] = np.nan
    values[0, FIRST + 2] += 900.0

    detection = _detect(values)

    assert detection.runs == ()
    assert detection.checked_rows == 1
    assert detection.scope_days < CHECKED


def test_partial_first_day_joins_run() -> None:
    values = _noisy(1000.0)
    values[0, FIRST + 4] += 150.0
    values[0, FIRST + 5 :] += 500.0 * WEEKLY[FIRST + 5 :]

    run = _detect(values).runs[0]

    assert run.start == FIRST + 4
    assert run.kind == "level_shift"


def test_two_spikes_are_two_runs() -> None:
    values = _noisy(1000.0)
    values[0, FIRST + 1] += 700.0
    values[0, FIRST + 9] += 700.0

    runs = _detect(values).runs

    assert [(run.start, run.kind) for run in runs] == [(FIRST + 1, "spike"), (FIRST + 9, "spike")]


def test_drop_is_not_reported() -> None:
    values = _noisy(1000.0)
    values[0, FIRST + 5 :] *= 0.3

    assert _detect(values).runs == ()


def test_false_alerts_on_noise_below_one_per_thousand() -> None:
    values = _noisy(1000.0, count=3000, noise=0.05, seed=11)
    z_only = Thresholds(5.0, 2.5, 0.0, 0.0, 3)

    detection = _detect(values, z_only, scale_floor=0.0)

    assert detection.scope_days == 3000 * CHECKED
    assert len(detection.runs) / detection.scope_days <= 1e-3


def test_baseline_reads_only_earlier_days() -> None:
    values = _noisy(1000.0, count=3)
    changed = values.copy()
    changed[:, FIRST + 7 :] *= 5.0
    options = {"baseline_days": 28, "season_weeks": 8, "min_days": 21, "scale_floor": 0.02}

    before = fit_baselines(values, FIRST, **options)
    after = fit_baselines(changed, FIRST, **options)

    assert np.array_equal(before.level[:, :8], after.level[:, :8])
    assert np.array_equal(before.scale[:, :8], after.scale[:, :8])
    assert not np.array_equal(before.level[:, 8:], after.level[:, 8:])


def test_baseline_rejects_bad_window() -> None:
    with pytest.raises(ValueError, match="multiple of 7"):
        fit_baselines(
            np.ones((1, 30)), 20, baseline_days=20, season_weeks=2, min_days=7, scale_floor=0.0
        )

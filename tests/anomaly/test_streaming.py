"""The streaming breakout detector: streaming equals batch, no look-ahead, what it flags."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from costwarden.anomaly.streaming import StreamingDetector, StreamingSettings, score_series

ALARM = 0.5
"""A score of 0.5 means a channel is level with the extreme of its window."""


def _noise(n: int, seed: int = 7) -> np.ndarray:
    return 10.0 + np.random.default_rng(seed).normal(0.0, 1.0, n)


def _five_minutes(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="5min")


def _daily_square_wave(n: int, seed: int = 5) -> np.ndarray:
    phase = np.arange(n) % 288
    return np.where(phase >= 144, 80.0, 20.0) + np.random.default_rng(seed).normal(0, 2, n)


def test_update_equals_batch() -> None:
    values = _daily_square_wave(2000)
    values[1500] = 150.0
    stamps = _five_minutes(values.size)
    batch = score_series(values, stamps)

    detector = StreamingDetector()
    streamed = np.array(
        [detector.update(t.to_pydatetime(), v) for t, v in zip(stamps, values, strict=True)]
    )

    np.testing.assert_array_equal(streamed, batch)
    assert detector.points_seen == values.size
    assert batch[1500] > ALARM


def test_batch_continues_after_updates() -> None:
    values = _noise(1500)
    values[1200:] += 6.0
    stamps = _five_minutes(values.size).to_numpy()
    whole = score_series(values, stamps)

    detector = StreamingDetector()
    head = [
        detector.update(stamp, value)
        for stamp, value in zip(stamps[:700], values[:700], strict=True)
    ]
    tail = detector.score_series(values[700:], stamps[700:])

    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)


def test_no_look_ahead() -> None:
    values = _daily_square_wave(3000)
    stamps = _five_minutes(values.size)
    changed = values.copy()
    changed[2000:] = np.random.default_rng(1).normal(500.0, 50.0, 1000)

    original = score_series(values, stamps)
    altered = score_series(changed, stamps)

    np.testing.assert_array_equal(original[:2000], altered[:2000])
    assert not np.array_equal(original[2000:], altered[2000:])


def test_flags_planted_spike() -> None:
    values = _noise(3000)
    values[2000] += 8.0

    scores = score_series(values, _five_minutes(values.size))

    assert scores[2000] > 0.6
    assert np.flatnonzero(scores[1000:] >= ALARM).tolist() == [1000]


def test_flags_level_shift_within_few_points() -> None:
    values = _noise(3000)
    values[2000:] += 5.0

    scores = score_series(values, _five_minutes(values.size))

    alarms = np.flatnonzero(scores[1000:] >= ALARM) + 1000
    assert alarms.size >= 1
    assert 2000 <= alarms[0] <= 2003
    # The new level's own noise sets a few new highs against the old median before the window
    # fills with it.
    assert alarms.size <= 5


def test_flags_missing_daily_peak() -> None:
    values = _daily_square_wave(4032)
    day = slice(3024, 3168)
    values[day] = 20.0 + np.random.default_rng(9).normal(0, 2, 144)
    stamps = _five_minutes(values.size)

    scores = score_series(values, stamps)
    clean = score_series(_daily_square_wave(4032), stamps)

    assert np.any(scores[3024:3040] >= ALARM)
    assert np.count_nonzero(clean[1000:] >= ALARM) == 0


def test_quiet_on_stationary_noise() -> None:
    values = _noise(20_000, seed=3)

    scores = score_series(values, _five_minutes(values.size))

    # At most one alarm in 19,000 points after the warm-up, a false-positive rate of 5e-5.
    assert np.count_nonzero(scores[1000:] >= ALARM) <= 1
    assert scores.min() >= 0.0
    assert scores.max() < 1.0


def test_extreme_values_stay_in_range() -> None:
    values = np.concatenate([np.zeros(500), [1e12, -1e12, 0.0], np.full(500, 3.0)])

    scores = score_series(values)

    assert np.all((scores >= 0.0) & (scores < 1.0))
    assert scores[500] > 0.99


def test_non_finite_values_are_skipped() -> None:
    values = _noise(800)
    with_gaps = np.insert(values, [300, 600], [np.nan, np.inf])

    detector = StreamingDetector()
    scores = detector.score_series(with_gaps)

    assert scores[300] == 0.0
    assert scores[602] == 0.0
    np.testing.assert_array_equal(np.delete(scores, [300, 602]), score_series(values))
    assert detector.points_seen == values.size


def test_season_learned_from_timestamps() -> None:
    detector = StreamingDetector()
    stamps = _five_minutes(150)
    for stamp, value in zip(stamps, _noise(150), strict=True):
        detector.update(stamp.to_datetime64(), value)

    assert detector.season_points == 288


def test_season_from_settings_without_timestamps() -> None:
    values = _daily_square_wave(4032)
    values[3024:3168] = 20.0

    fixed = score_series(values, settings=StreamingSettings(season_points=288))
    without = score_series(values)

    assert np.any(fixed[3024:3040] >= ALARM)
    assert not np.any(without[3024:3168] >= ALARM)
    assert StreamingDetector().season_points is None


def test_aware_and_naive_timestamps_agree() -> None:
    values = _daily_square_wave(600)
    naive = [dt.datetime(2024, 1, 1) + dt.timedelta(minutes=5 * i) for i in range(600)]
    aware = [stamp.replace(tzinfo=dt.UTC) for stamp in naive]

    np.testing.assert_array_equal(score_series(values, naive), score_series(values, aware))


def test_reset_forgets_history() -> None:
    detector = StreamingDetector()
    first = detector.score_series(_noise(500))
    detector.reset()

    assert detector.points_seen == 0
    np.testing.assert_array_equal(detector.score_series(_noise(500)), first)


def test_timestamps_must_match_values() -> None:
    with pytest.raises(ValueError, match="3 timestamps for 4 values"):
        score_series(np.zeros(4), _five_minutes(3))
    with pytest.raises(ValueError, match="one-dimensional"):
        score_series(np.zeros((2, 2)))


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValidationError, match="distinct increasing"):
        StreamingSettings(level_windows=(9, 3))
    with pytest.raises(ValidationError, match="shorter than history_points"):
        StreamingSettings(history_points=100, level_windows=(3, 200))
    with pytest.raises(ValidationError, match="exceeds max_season_points"):
        StreamingSettings(season_points=20_000)
    with pytest.raises(ValidationError, match="extra"):
        StreamingSettings(history=10)

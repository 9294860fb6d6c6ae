"""Quota projection on series with known breach days, and the alert decision built on it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from costwarden.config import ForecastSettings, QuotaSettings
from costwarden.quota import (
    QuotaTarget,
    UsageHistory,
    decide_alerts,
    first_crossings,
    headroom_clear,
    project,
    quota_fingerprint,
    window_bounds,
)
from costwarden.quota.projection import breach_indices
from costwarden.quota.series import build_history

AS_OF = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
HISTORY_END = date(2026, 11, 14)
FORECAST = ForecastSettings(sample_paths=500)
TEMPLATE = "https://palette.example/projects/{project_uid}/clusters/{cluster_uid}"


def _target(limit: float, resource: str = "memory", kind: str = "namespace") -> QuotaTarget:
    return QuotaTarget(
        scope_kind=kind,  # type: ignore[arg-type]
        scope_id="c1/ledger",
        resource=resource,  # type: ignore[arg-type]
        limit=limit,
        limit_kind="namespace_quota",
        name="ledger",
        cluster_uid="c1",
        details={"cluster_name": "payments-prod", "project_uid": "p1"},
    )


def _history(values: np.ndarray, current: float | None = None) -> UsageHistory:
    start = HISTORY_END - timedelta(days=len(values) - 1)
    latest = float(values[-1]) if current is None else current
    day = HISTORY_END if current is None else AS_OF.date()
    return UsageHistory(start, HISTORY_END, np.asarray(values, dtype=float), latest, day)


def _ramp(days: int = 28, start: float = 50.0, slope: float = 2.0) -> np.ndarray:
    noise = np.random.default_rng(3).normal(0.0, 0.05, days)
    return start + slope * np.arange(days) + noise


def test_linear_ramp_reaches_limit_on_computed_day() -> None:
    # The last value is about 50 + 2 * 27 = 104, so a limit of 120 is reached 8 days later.
    values = _ramp()
    quota = QuotaSettings(window_days=10)

    result = project(_target(120.0), _history(values), AS_OF, quota, FORECAST)

    assert result.status == "breach_in_window"
    assert result.breach_date == HISTORY_END + timedelta(days=8)
    assert result.breach_date_p10 is not None and result.breach_date_p90 is not None
    assert result.breach_date_p10 <= result.breach_date <= result.breach_date_p90
    assert (result.breach_date_p90 - result.breach_date_p10).days <= 2
    assert result.probability > 0.9
    assert result.model is not None and result.model != "headroom-screen"
    assert result.history_start == HISTORY_END - timedelta(days=27)


def test_ramp_past_window_is_screened_out() -> None:
    # At 2 a day from about 104, a limit of 120 cannot be reached by the window's end (day 5).
    quota = QuotaSettings(window_days=5)

    result = project(_target(120.0), _history(_ramp()), AS_OF, quota, FORECAST)

    assert result.status == "screened"
    assert result.breach_date is None
    assert decide_alerts([result], quota, AS_OF, TEMPLATE) == []


def test_noisy_ramp_breaching_after_window_does_not_alert() -> None:
    # The underlying line is at 104 on the last day and reaches 119 on day 8, after the window.
    values = _ramp() + np.random.default_rng(9).normal(0.0, 2.0, 28)
    limit = 119.0
    quota = QuotaSettings(window_days=5)

    result = project(_target(limit), _history(values), AS_OF, quota, FORECAST)

    assert result.status == "breach_later"
    assert result.breach_date is not None
    assert result.breach_date > result.window_end
    assert 0.0 < result.probability < 0.5
    assert decide_alerts([result], quota, AS_OF, TEMPLATE) == []


def test_flat_series_never_alerts() -> None:
    values = 40.0 + np.random.default_rng(5).normal(0.0, 1.0, 28)
    quota = QuotaSettings()

    far = project(_target(60.0), _history(values), AS_OF, quota, FORECAST)
    near = project(_target(44.0), _history(values), AS_OF, quota, FORECAST)

    assert far.status == "screened"
    assert far.probability == 0.0
    assert near.status in ("clear", "breach_later")
    assert near.model is not None and near.model != "headroom-screen"
    assert near.probability < 0.5
    assert decide_alerts([far, near], quota, AS_OF, TEMPLATE) == []


def test_at_limit_dates_from_streak_start() -> None:
    values = np.array([80.0, 90.0, 101.0, 99.0, 100.0, 104.0])

    result = project(_target(100.0), _history(values), AS_OF, QuotaSettings(), FORECAST)
    [alert] = decide_alerts([result], QuotaSettings(), AS_OF, TEMPLATE)

    assert result.status == "at_limit"
    assert result.breach_date == HISTORY_END - timedelta(days=1)
    assert result.probability == 1.0
    assert result.model is None
    assert alert.severity == "critical"
    assert "at the limit since 2026-11-13" in alert.title
    assert alert.link == "https://palette.example/projects/p1/clusters/c1"


def test_pool_snapshot_at_max_alerts_today() -> None:
    values = np.array([20.0, 21.0, 22.0, 23.0])

    result = project(
        _target(24.0, "nodes", "pool"),
        _history(values, current=24.0),
        AS_OF,
        QuotaSettings(),
        FORECAST,
    )

    assert result.status == "at_limit"
    assert result.breach_date == AS_OF.date()
    assert result.current_day == AS_OF.date()


def test_short_history_is_not_forecast() -> None:
    result = project(
        _target(100.0), _history(np.array([10.0, 11.0])), AS_OF, QuotaSettings(), FORECAST
    )

    assert result.status == "insufficient_history"
    assert "min_history_days=3" in (result.note or "")


def test_missing_history_reports_no_usage() -> None:
    result = project(_target(8.0, "gpu"), None, AS_OF, QuotaSettings(), FORECAST)

    assert result.status == "no_usage"
    assert result.note == "no gpu usage data for this scope"


def test_severity_follows_critical_days() -> None:
    values = _ramp(slope=4.0)
    target = _target(float(values[-1]) + 4.0 * 1.5)
    quota = QuotaSettings(window_days=5, critical_days=2)

    result = project(target, _history(values), AS_OF, quota, FORECAST)
    [alert] = decide_alerts([result], quota, AS_OF, TEMPLATE)

    assert result.breach_date == AS_OF.date() + timedelta(days=1)
    assert alert.severity == "critical"
    relaxed = decide_alerts([result], QuotaSettings(critical_days=1), AS_OF, TEMPLATE)
    assert relaxed[0].severity == "warning"


def test_first_crossings_and_quantiles() -> None:
    paths = np.array(
        [
            [1.0, 2.0, 3.0, 4.0],
            [5.0, 1.0, 1.0, 1.0],
            [1.0, 1.0, 1.0, 1.0],
            [0.0, 0.0, 4.0, 5.0],
        ]
    )

    first = first_crossings(paths, 3.0)

    assert first.tolist() == [2, 0, 4, 2]
    assert breach_indices(np.arange(10)) == (4, 0, 8)


def test_headroom_screen() -> None:
    flat = np.full(14, 10.0) + np.random.default_rng(1).normal(0.0, 0.2, 14)
    rising = np.linspace(10.0, 20.0, 14)

    assert headroom_clear(flat, 15.0, 6)
    assert not headroom_clear(flat, 10.5, 6)
    assert not headroom_clear(rising, 24.0, 6)
    assert headroom_clear(rising, 25.0, 6)
    assert not headroom_clear(np.array([1.0, 1.0]), 100.0, 6)


def test_window_counts_day_of_pass_as_day_one() -> None:
    assert window_bounds(AS_OF, 5) == (date(2026, 11, 15), date(2026, 11, 19))


def test_build_history_fills_gaps_and_takes_snapshot() -> None:
    values = {date(2026, 11, 10): 1.0, date(2026, 11, 13): 4.0, date(2026, 11, 15): 9.0}

    history = build_history(values, date(2026, 11, 15))

    assert history is not None
    assert history.values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert (history.start, history.end) == (date(2026, 11, 10), date(2026, 11, 13))
    assert (history.current, history.current_day) == (9.0, date(2026, 11, 15))
    assert history.filled_days == 2
    assert build_history({}, date(2026, 11, 15)) is None


def test_fingerprint_ignores_values_and_dates() -> None:
    base = _target(100.0)
    raised = _target(150.0)
    other = _target(100.0, "cpu")

    assert quota_fingerprint(base) == quota_fingerprint(raised)
    assert quota_fingerprint(base) != quota_fingerprint(other)
    assert len(quota_fingerprint(base)) == 32


@pytest.mark.parametrize("window_days", [1, 3])
def test_alert_window_matches_settings(window_days: int) -> None:
    values = np.array([80.0, 90.0, 101.0])
    result = project(
        _target(100.0), _history(values), AS_OF, QuotaSettings(window_days=window_days), FORECAST
    )

    assert (result.window_end - result.window_start).days == window_days - 1

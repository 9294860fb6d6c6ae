"""Stored interval adjustments: saved per source, the latest read back, used by budget passes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from costwarden.budgets import parse_budgets
from costwarden.budgets.evaluate import evaluate_budget
from costwarden.config import load_settings
from costwarden.forecast.adjustment import ResidualForecast, fit_adjustment
from costwarden.store.adjustments import latest_adjustment, save_adjustment
from costwarden.store.tables import IntervalAdjustmentRecord

NOW = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)


def _adjustment(origins: int, true_sd: float):
    rng = np.random.default_rng(origins)
    items = []
    for number in range(origins):
        for _ in range(30):
            mean = np.full(14, 100.0)
            items.append(
                ResidualForecast(
                    origin=date(2026, 1, 1) + timedelta(days=14 * number),
                    actual=mean + rng.normal(0.0, true_sd, 14),
                    mean=mean,
                    lower={80: mean - 12.8, 95: mean - 19.6},
                    upper={80: mean + 12.8, 95: mean + 19.6},
                )
            )
    return fit_adjustment(items, history_end=date(2026, 11, 15))


def test_latest_adjustment_per_source(store) -> None:
    older, newer, other = _adjustment(3, 12.0), _adjustment(4, 15.0), _adjustment(5, 9.0)
    with store.transaction() as session:
        save_adjustment(session, older, source="palette", scope_kind="cluster", now=NOW)
        save_adjustment(
            session, newer, source="palette", scope_kind="cluster", now=NOW + timedelta(days=7)
        )
        save_adjustment(session, other, source="focus", scope_kind="cluster", now=NOW)

    with store.transaction() as session:
        assert latest_adjustment(session, "palette") == newer
        assert latest_adjustment(session, "focus") == other
        assert latest_adjustment(session, "opencost") is None


def test_invalid_stored_adjustment_is_skipped(store, caplog) -> None:
    with store.transaction() as session:
        session.add(
            IntervalAdjustmentRecord(
                source="palette", scope_kind="cluster", created_at=NOW, payload={"factors": "x"}
            )
        )

    with store.transaction() as session:
        assert latest_adjustment(session, "palette") is None
    assert "invalid and ignored" in caplog.text


BUDGET = """
budgets:
  - name: noisy
    scope: {cluster: noisy-cluster}
    amount: 5000
"""


@pytest.fixture
def noisy_store(store):
    from decimal import Decimal

    from costwarden.domain import ClusterInfo, CostRecord, ProjectInfo
    from costwarden.store import upsert_facts, upsert_fleet

    rng = np.random.default_rng(3)
    records = []
    day = date(2026, 8, 1)
    while day < NOW.date():
        start = datetime.combine(day, datetime.min.time(), UTC)
        amount = Decimal(f"{100 + rng.normal(0, 8):.2f}")
        records.append(
            CostRecord(
                source="palette",
                grain="cluster",
                period_start=start,
                period_end=start + timedelta(days=1),
                amount=amount,
                currency="USD",
                cloud="aws",
                project_uid="p1",
                project_name="proj",
                cluster_uid="c1",
                cluster_name="noisy-cluster",
            )
        )
        day += timedelta(days=1)
    with store.transaction() as session:
        upsert_fleet(
            session,
            [ProjectInfo("p1", "proj")],
            [ClusterInfo("c1", "noisy-cluster", "p1", "proj", "aws")],
            [],
        )
        upsert_facts(session, records, batch_id="test")
    return store


def _status(store, **overrides):
    settings = load_settings(forecast__sample_paths=300, **overrides)
    budget = parse_budgets(BUDGET)[0]
    with store.transaction() as session:
        return evaluate_budget(session, budget, NOW, settings)


def test_budget_pass_uses_stored_adjustment(noisy_store) -> None:
    before = _status(noisy_store)
    with noisy_store.transaction() as session:
        save_adjustment(
            session, _adjustment(4, 20.0), source="palette", scope_kind="cluster", now=NOW
        )

    after = _status(noisy_store)
    switched_off = _status(noisy_store, forecast__backtest_adjustment=False)

    assert "interval_adjustment" not in before.forecast.params
    assert after.forecast.params["interval_adjustment"]["origins"] == 4
    assert "interval_adjustment" not in switched_off.forecast.params
    # The adjustment was fitted on 14-day forecasts, so later days keep a factor of 1.
    width_before = (before.forecast.days.hi80 - before.forecast.days.lo80)[:14]
    width_after = (after.forecast.days.hi80 - after.forecast.days.lo80)[:14]
    assert np.all(width_after > 1.3 * width_before)


def test_adjustment_after_history_is_not_used(noisy_store) -> None:
    later = _adjustment(4, 20.0).model_copy(update={"history_end": date(2026, 12, 31)})
    with noisy_store.transaction() as session:
        save_adjustment(session, later, source="palette", scope_kind="cluster", now=NOW)

    status = _status(noisy_store)

    assert "interval_adjustment" not in status.forecast.params

"""The cost anomaly pass when the stored Palette facts are in another currency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costwarden.anomaly.cost import find_cost_anomalies
from costwarden.config import load_settings
from costwarden.domain import CostRecord
from costwarden.store import upsert_facts

AS_OF = datetime(2026, 11, 15, 10, tzinfo=UTC)


def test_currency_mismatch_is_reported(sqlite_store, caplog) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    record = CostRecord(
        source="palette",
        grain="cluster",
        period_start=start,
        period_end=start + timedelta(days=1),
        amount=Decimal("10"),
        currency="USD",
        cluster_uid="c1",
        cluster_name="one",
    )
    with sqlite_store.transaction() as session:
        upsert_facts(session, [record], batch_id="test")

    settings = load_settings(palette={"currency": "EUR"})
    with sqlite_store.transaction() as session:
        findings = find_cost_anomalies(session, settings, AS_OF)

    assert findings.anomalies == ()
    assert "stored Palette facts are in USD" in findings.note
    assert "COSTWARDEN_PALETTE_CURRENCY" in caplog.text

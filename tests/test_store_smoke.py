from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from costwarden.domain import CostRecord
from costwarden.store import upsert_facts
from costwarden.store.tables import CostFact


def _record(day: int, amount: str) -> CostRecord:
    start = datetime(2026, 11, day, tzinfo=UTC)
    return CostRecord(
        source="palette",
        grain="cluster",
        period_start=start,
        period_end=start + timedelta(days=1),
        amount=Decimal(amount),
        currency="USD",
        cluster_uid="c1",
        cluster_name="one",
    )


def test_upsert_twice_changes_nothing(store):
    records = [_record(day, f"{day}.125") for day in range(1, 11)]

    with store.transaction() as session:
        first = upsert_facts(session, records, batch_id="b1")
    with store.transaction() as session:
        second = upsert_facts(session, records, batch_id="b2")

    assert first.inserted == 10
    assert second.inserted == 0
    assert second.unchanged == 10
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(CostFact)) == 10
        amount = session.scalar(select(CostFact.amount).where(CostFact.day == datetime(2026, 11, 3).date()))
    assert amount == Decimal("3.125")


def test_upsert_updates_changed_amount(store):
    with store.transaction() as session:
        upsert_facts(session, [_record(1, "1.00")], batch_id="b1")
    with store.transaction() as session:
        counts = upsert_facts(session, [_record(1, "2.50")], batch_id="b2")

    assert counts.updated == 1
    with store.transaction() as session:
        assert session.scalar(select(CostFact.amount)) == Decimal("2.50")


def test_summed_money_drops_float_noise():
    from costwarden.store.queries import summed_money

    assert summed_money(7423.549487000000300) == Decimal("7423.549487")
    assert summed_money(0.1 + 0.2) == Decimal("0.3")
    assert summed_money(None) == Decimal(0)
    assert summed_money(Decimal("1.25")) == Decimal("1.25")

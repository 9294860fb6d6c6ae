"""Stored budgets: validation by the budget file's rules, versions, imports and origins."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from costwarden.errors import BudgetFileError, ConflictError, PreconditionFailedError
from costwarden.store import Store
from costwarden.store.budgets import (
    delete_budget,
    get_budget_spec,
    import_budgets,
    put_budget,
    stored_budgets,
)
from costwarden.store.tables import BudgetStatusRecord


def _spec(name: str, amount: object = 1000, **extra: object) -> dict[str, object]:
    return {"name": name, "scope": {"cluster": "prod-eu"}, "amount": amount, **extra}


def test_put_budget_fills_defaults(store: Store) -> None:
    with store.transaction() as session:
        row = put_budget(session, _spec("team-a", "1234.56"), "api")

    assert row.version == 1
    assert row.origin == "api"
    assert row.spec["currency"] == "USD"
    assert row.spec["period"] == "monthly"
    assert row.spec["timezone"] == "UTC"
    assert row.spec["amount"] == "1234.56"

    with store.transaction() as session:
        budgets = stored_budgets(session)
    assert [budget.name for budget in budgets] == ["team-a"]
    assert budgets[0].amount == Decimal("1234.56")
    assert budgets[0].scope.cluster == "prod-eu"
    assert budgets[0].period.kind == "monthly"


def test_put_budget_versions_only_on_change(store: Store) -> None:
    with store.transaction() as session:
        put_budget(session, _spec("team-a"), "api")
    with store.transaction() as session:
        same = put_budget(session, _spec("team-a"), "api")
        assert same.version == 1
    with store.transaction() as session:
        changed = put_budget(session, _spec("team-a", 2000), "api")
        assert changed.version == 2
        assert changed.spec["amount"] == "2000"


@pytest.mark.parametrize(
    ("spec", "field", "value"),
    [
        (_spec("bad-amount", -5), "amount", -5),
        (_spec("bad-currency", currency="dollars"), "currency", "DOLLARS"),
        (_spec("bad-zone", timezone="Mars/Olympus"), "timezone", "Mars/Olympus"),
        (_spec("bad-period", period="fortnightly"), "period", "fortnightly"),
        ({"name": "typo", "scope": {}, "amount": 1, "treshold": []}, "treshold", None),
        (
            {"name": "bad-labels", "scope": {"labels": "team in (a"}, "amount": 1},
            "scope.labels",
            "team in (a",
        ),
    ],
)
def test_put_budget_rejects_invalid_spec(
    sqlite_store: Store, spec: dict[str, object], field: str, value: object
) -> None:
    with sqlite_store.transaction() as session, pytest.raises(BudgetFileError) as caught:
        put_budget(session, spec, "api")

    assert caught.value.field == field
    assert caught.value.value == value
    assert caught.value.budget == spec["name"]
    assert repr(spec["name"]) in str(caught.value)
    with sqlite_store.transaction() as session:
        assert get_budget_spec(session, str(spec["name"])) is None


def test_put_budget_rejects_non_mapping(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as session, pytest.raises(BudgetFileError, match="mapping"):
        put_budget(session, ["not", "a", "budget"], "api")  # type: ignore[arg-type]


def test_delete_budget(store: Store) -> None:
    now = datetime.now(UTC)
    with store.transaction() as session:
        put_budget(session, _spec("team-a"), "api")
        session.add(
            BudgetStatusRecord(budget="team-a", run_id="r1", as_of=now, payload={}, updated_at=now)
        )
    with store.transaction() as session:
        assert delete_budget(session, "team-a") is True
        assert delete_budget(session, "team-a") is False
        assert get_budget_spec(session, "team-a") is None
        assert session.get(BudgetStatusRecord, "team-a") is None


def test_import_counts_each_outcome(store: Store) -> None:
    with store.transaction() as session:
        import_budgets(session, [_spec("a"), _spec("b"), _spec("old")], "api")
    with store.transaction() as session:
        put_budget(session, _spec("from-file"), "file")

    with store.transaction() as session:
        result = import_budgets(
            session, [_spec("a"), _spec("b", 5), _spec("c")], "api", replace_origin=True
        )

    assert result.created == ("c",)
    assert result.updated == ("b",)
    assert result.unchanged == ("a",)
    assert result.deleted == ("old",)
    with store.transaction() as session:
        names = [budget.name for budget in stored_budgets(session)]
        assert get_budget_spec(session, "b").version == 2  # type: ignore[union-attr]
    assert names == ["a", "b", "c", "from-file"]


def test_import_writes_nothing_on_error(store: Store) -> None:
    with store.transaction() as session:
        import_budgets(session, [_spec("keep")], "api")

    specs = [_spec("new-1"), _spec("keep", 9), _spec("broken", "lots")]
    with store.transaction() as session, pytest.raises(BudgetFileError) as caught:
        import_budgets(session, specs, "api", replace_origin=True)

    assert caught.value.path == "item 3"
    assert caught.value.field == "amount"
    assert caught.value.value == "lots"
    with store.transaction() as session:
        assert [budget.name for budget in stored_budgets(session)] == ["keep"]
        assert get_budget_spec(session, "keep").spec["amount"] == "1000"  # type: ignore[union-attr]


def test_import_rejects_duplicate_names(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as session, pytest.raises(BudgetFileError) as caught:
        import_budgets(session, [_spec("twin"), _spec("twin", 3)], "api")

    assert caught.value.path == "item 2"
    assert caught.value.field == "name"
    assert "duplicate" in str(caught.value)


def test_import_rejects_unknown_origin(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as session, pytest.raises(ValueError, match="origin"):
        import_budgets(session, [_spec("a")], "console")


def test_file_spec_round_trip(sqlite_store: Store) -> None:
    from costwarden.budgets.loader import parse_budget_specs

    text = """
defaults: {currency: EUR, period: quarterly, timezone: Europe/Berlin}
budgets:
  - name: platform
    scope: {project: platform, labels: "team=core"}
    amount: 5000
    period: {start: 2026-01-01, end: 2026-03-31}
    thresholds:
      - {type: forecast, percent: 90, probability: 0.7, severity: critical}
"""
    parsed = parse_budget_specs(text, "budgets.yaml")
    with sqlite_store.transaction() as session:
        import_budgets(session, [spec for _, spec in parsed], "file")
    with sqlite_store.transaction() as session:
        [stored] = stored_budgets(session)

    assert stored == parsed[0][0]
    assert stored.currency == "EUR"
    assert stored.period.timezone == "Europe/Berlin"
    assert stored.period.kind == "custom"


def test_stale_write_conflicts(store: Store) -> None:
    with store.transaction() as session:
        put_budget(session, _spec("team-a"), "api")

    with store.transaction() as stale, pytest.raises(ConflictError, match="same time"):
        # Keep the row: the session would otherwise drop it and read the new version again.
        seen = get_budget_spec(stale, "team-a")
        assert seen is not None
        assert seen.version == 1
        with store.transaction() as other:
            put_budget(other, _spec("team-a", 2000), "api")
        put_budget(stale, _spec("team-a", 3000), "api")

    with store.transaction() as session:
        row = get_budget_spec(session, "team-a")
        assert row is not None
        assert row.version == 2
        assert row.spec["amount"] == "2000"


def test_expected_version_checked(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as session:
        put_budget(session, _spec("team-a"), "api")

    with sqlite_store.transaction() as session, pytest.raises(PreconditionFailedError):
        put_budget(session, _spec("team-a", 5), "api", expected_version=2)
    with sqlite_store.transaction() as session, pytest.raises(PreconditionFailedError):
        put_budget(session, _spec("team-b", 5), "api", expected_version=1)
    with sqlite_store.transaction() as session:
        assert put_budget(session, _spec("team-a", 5), "api", expected_version=1).version == 2

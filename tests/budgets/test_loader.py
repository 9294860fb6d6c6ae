from datetime import date
from decimal import Decimal
from textwrap import dedent

import pytest

from costwarden.budgets import load_budgets, parse_budgets
from costwarden.errors import BudgetFileError

VALID = dedent(
    """
    version: 1
    defaults:
      currency: EUR
      period: monthly
    budgets:
      - name: ml
        scope: {cluster: ml-training-eks}
        amount: 15000
        thresholds:
          - {type: actual, percent: 80}
          - {type: forecast, percent: 100, probability: 0.8, severity: critical}
      - name: dev-teams
        scope: {labels: "team=ml,env!=prod"}
        amount: 2500.50
        currency: usd
        period: weekly
        timezone: Europe/Berlin
        thresholds:
          - {type: forecast, amount: 3000}
      - name: q4-migration
        scope: {project: data-science, namespace: etl}
        amount: 9000
        period: {start: 2026-10-01, end: 2026-12-31}
        thresholds:
          - {type: actual, amount: 8000}
    """
)


def test_valid_file_parses_every_field():
    budgets = parse_budgets(VALID, "budgets.yaml")

    ml, dev, migration = budgets
    assert ml.currency == "EUR"
    assert ml.period.kind == "monthly"
    assert ml.thresholds[1].probability == 0.8
    assert ml.thresholds[1].severity == "critical"
    assert ml.thresholds[1].limit(ml.amount) == Decimal("15000")
    assert ml.thresholds[0].limit(ml.amount) == Decimal("12000")
    assert dev.currency == "USD"
    assert dev.amount == Decimal("2500.50")
    assert dev.period.timezone == "Europe/Berlin"
    assert dev.scope.is_namespace_scope
    assert [str(r) for r in dev.scope.labels] == ["team=ml", "env!=prod"]
    assert migration.period.kind == "custom"
    assert migration.period.end == date(2026, 12, 31)
    assert migration.scope.namespace == "etl"


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (("cluster: ml-training-eks", "clustr: ml-training-eks"), "budget 'ml', field scope.clustr"),
        (("amount: 15000", "amount: -5"), "budget 'ml', field amount"),
        (("amount: 15000", "amount: lots"), "field amount"),
        (("{type: actual, percent: 80}", "{type: actual, percent: 80, amount: 5}"),
         "exactly one of 'percent' or 'amount'"),
        (("{type: actual, percent: 80}", "{type: actual, percent: 80, probability: 0.5}"),
         "forecast thresholds only"),
        (("timezone: Europe/Berlin", "timezone: Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (('"team=ml,env!=prod"', '"team=ml,,"'), "field scope.labels"),
        (("end: 2026-12-31", "end: 2026-09-01"), "is before start"),
        (("currency: usd", "currency: dollars"), "not an ISO 4217 code"),
        (("name: dev-teams", "name: ml"), "duplicate budget name"),
    ],
)
def test_invalid_file_names_budget_and_field(replace, expected):
    text = VALID.replace(*replace)

    with pytest.raises(BudgetFileError) as caught:
        parse_budgets(text, "budgets.yaml")

    assert "budgets.yaml" in str(caught.value)
    assert expected in str(caught.value)


def test_error_names_line_of_budget():
    text = VALID.replace("amount: 9000", "amount: 0")

    with pytest.raises(BudgetFileError) as caught:
        parse_budgets(text, "budgets.yaml")

    line = VALID.splitlines().index("  - name: q4-migration") + 1
    assert f"line {line}, budget 'q4-migration'" in str(caught.value)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(BudgetFileError, match="not found"):
        load_budgets(tmp_path / "absent.yaml")


def test_not_yaml_is_reported():
    with pytest.raises(BudgetFileError, match="not valid YAML"):
        parse_budgets("budgets: [", "b.yaml")


def test_example_file_is_valid():
    from costwarden.cli.run import demo_budgets_file

    budgets = load_budgets(demo_budgets_file())

    assert len(budgets) >= 4
    assert {"ml-training-monthly", "payments-prod-monthly"} <= {b.name for b in budgets}

"""Notices built from budget, quota and anomaly payloads and from recommendations."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import jsonschema
import pytest
from notify_samples import (
    ANOMALY_PAYLOAD,
    GENERATED_AT,
    QUOTA_PAYLOAD,
    RECOMMENDATION_ITEM,
    budget_payload,
    notify_settings,
    schema,
)

from costwarden.notify.build import (
    FleetLabels,
    money,
    notice_from_anomaly_payload,
    notice_from_budget_payload,
    notice_from_quota_payload,
    notices_from_recommendations,
    percent,
    recommendation_alert_id,
)
from costwarden.notify.notice import Notice
from costwarden.notify.registry import ChannelContext


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        (budget_payload(), "alert.schema.json"),
        (QUOTA_PAYLOAD, "quota-alert.schema.json"),
        (ANOMALY_PAYLOAD, "anomaly-alert.schema.json"),
    ],
)
def test_sample_payloads_follow_schemas(payload, name):
    jsonschema.validate(payload, schema(name))


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (1234.5, "USD", "1,234.50 USD"),
        (Decimal("0.005"), "EUR", "0.01 EUR"),
        ("1000000", "JPY", "1,000,000.00 JPY"),
        (-12.345, "USD", "-12.35 USD"),
        (None, "USD", "-"),
        (5, None, "5.00"),
    ],
)
def test_money_format(value, currency, expected):
    assert money(value, currency) == expected


def test_percent_format():
    assert percent(0.871) == "87%"
    assert percent(1.0) == "100%"
    assert percent(None) == "-"


def test_budget_notice_fields():
    notice = notice_from_budget_payload(budget_payload(), notify_settings())

    assert notice.kind == "budget"
    assert notice.severity == "critical"
    assert notice.budget == "ml-training-monthly"
    assert notice.period_start == date(2026, 11, 1)
    assert notice.period_end == date(2026, 11, 30)
    assert notice.period_key == "2026-11-01"
    assert notice.currency == "USD"
    assert notice.generated_at == GENERATED_AT
    assert notice.probability == 0.87
    assert notice.breach_date == date(2026, 11, 26)
    assert notice.overspend == 2250.0
    assert notice.palette_url == "https://console.spectrocloud.com/clusters/u1"


def test_budget_notice_facts():
    facts = dict(notice_from_budget_payload(budget_payload(), notify_settings()).facts)

    assert facts["Budget"] == "15,000.00 USD"
    assert facts["Spent to date"] == "8,123.40 USD"
    assert facts["Forecast"] == "17,250.00 USD (80% interval 16,100.50 to 18,400.00 USD)"
    assert facts["Probability of exceeding"] == "87%"
    assert facts["Breach date"] == "2026-11-26"
    assert facts["Expected overspend"] == "2,250.00 USD"
    assert facts["Period"] == "2026-11-01 to 2026-11-30"


def test_budget_notice_already_exceeded():
    payload = budget_payload(already_exceeded=True, breach_date=None)

    facts = dict(notice_from_budget_payload(payload, notify_settings()).facts)

    assert facts["Breach date"] == "already exceeded"


def test_budget_notice_contributors():
    notice = notice_from_budget_payload(budget_payload(), notify_settings())

    assert [item.name for item in notice.contributors] == ["pool-0", "pool-1", "pool-2"]
    assert notice.contributors[0].amount == "1,000.00 USD"
    assert notice.contributors[0].share == 0.3


def test_budget_notice_actions():
    notice = notice_from_budget_payload(budget_payload(), notify_settings())

    (action,) = notice.actions
    assert action.id == "00000000000000a1"
    assert action.savings_per_month == "1,234.50 USD"
    assert action.link == "PUT /v1/clusters/u1/pools/gpu"


def test_budget_notice_prefers_ui_link():
    payload = budget_payload()
    payload["recommended_actions"][0]["ui_link"] = "https://console.example.com/pools/gpu"

    notice = notice_from_budget_payload(payload, notify_settings())

    assert notice.actions[0].link == "https://console.example.com/pools/gpu"


def test_budget_notice_owners_from_labels():
    settings = notify_settings(owner_labels=["team", "cost-center", "missing"])

    notice = notice_from_budget_payload(budget_payload(), settings)

    assert notice.labels == {"team": "ml", "env": "prod", "cost-center": "cc-42"}
    assert notice.owners == ("ml-platform@example.com", "ml", "cc-42")


def test_budget_notice_owner_repeated_once():
    payload = budget_payload()
    payload["budget"]["owner"] = "ml"

    notice = notice_from_budget_payload(payload, notify_settings(owner_labels=["team"]))

    assert notice.owners == ("ml",)


def test_budget_labels_from_selector():
    payload = budget_payload()
    payload["budget"]["labels"] = {"env": "staging"}
    payload["scope"]["labels"] = "team=storefront,env!=prod,tier in (web),zone"

    notice = notice_from_budget_payload(payload, notify_settings())

    assert notice.labels == {"team": "storefront", "tier": "web", "env": "staging"}


def test_alert_url_from_public_url():
    notice = notice_from_budget_payload(budget_payload(), notify_settings())

    assert notice.alert_url == f"https://costwarden.example.com/api/v1/alerts/{'a' * 32}"


def test_alert_url_from_context():
    context = ChannelContext(public_url="https://cw.internal")

    notice = notice_from_budget_payload(budget_payload(), notify_settings(), context=context)

    assert notice.alert_url == f"https://cw.internal/api/v1/alerts/{'a' * 32}"


def test_alert_url_absent_without_public_url():
    notice = notice_from_budget_payload(budget_payload(), notify_settings(public_url=None))

    assert notice.alert_url is None


def test_budget_notice_json_round_trip():
    notice = notice_from_budget_payload(budget_payload(), notify_settings())

    assert Notice.from_json(notice.to_json()) == notice


def test_quota_notice():
    fleet = FleetLabels(
        clusters={"c-pay": {"team": "payments", "env": "prod"}},
        namespaces={("c-pay", "ledger"): {"team": "ledger"}},
    )

    notice = notice_from_quota_payload(QUOTA_PAYLOAD, notify_settings(), fleet=fleet)

    assert notice.kind == "quota"
    assert notice.severity == "warning"
    assert notice.labels == {"team": "ledger", "env": "prod"}
    assert notice.owners == ("ledger",)
    assert notice.probability == 0.72
    assert notice.breach_date == date(2026, 11, 20)
    assert notice.period_key == "c" * 32
    facts = dict(notice.facts)
    assert facts["Limit"] == "8.0 cores (namespace quota)"
    assert facts["Current usage"] == "7.5 cores on 2026-11-14"
    assert facts["Utilisation"] == "94%"
    assert facts["Probability of reaching the limit"] == "72%"


def test_quota_notice_at_limit():
    payload = dict(QUOTA_PAYLOAD, already_at_limit=True, breach_date="2026-11-10")

    facts = dict(notice_from_quota_payload(payload, notify_settings()).facts)

    assert facts["Breach date"] == "at the limit since 2026-11-10"
    assert "Probability of reaching the limit" not in facts


def test_anomaly_notice():
    fleet = FleetLabels(clusters={"c-pay": {"team": "payments"}})

    notice = notice_from_anomaly_payload(ANOMALY_PAYLOAD, notify_settings(), fleet=fleet)

    assert notice.kind == "anomaly"
    assert notice.state == "firing"
    assert notice.labels == {"team": "payments"}
    assert notice.overspend == 600.0
    assert notice.probability is None
    assert [item.name for item in notice.contributors] == [f"ns-{i}" for i in range(5)]
    assert notice.contributors[0].amount == "10.00 USD"
    assert notice.contributors[0].kind == "namespace"
    facts = dict(notice.facts)
    assert facts["Impact per day"] == "600.00 USD"
    assert facts["Expected per day"] == "300.00 USD"
    assert facts["Change"] == "+200%"
    assert facts["Likely cause"] == "node pool scaled up"


def test_resolved_anomaly_notice_state():
    payload = dict(ANOMALY_PAYLOAD, status="resolved")

    assert notice_from_anomaly_payload(payload, notify_settings()).state == "resolved"


def test_recommendation_notices():
    settings = notify_settings()
    small = dict(RECOMMENDATION_ITEM, id="small")
    small["savings"] = dict(small["savings"], per_month="0.00")

    notices = notices_from_recommendations([RECOMMENDATION_ITEM, small], settings, GENERATED_AT)

    (notice,) = notices
    assert notice.kind == "recommendation"
    assert notice.severity == "info"
    assert notice.alert_id == recommendation_alert_id("0123456789abcdef")
    assert notice.actions[0].savings_per_month == "311.77 USD"
    assert notice.actions[0].link == "https://console.spectrocloud.com/clusters/c-pay"
    assert dict(notice.facts)["Target"] == "payments-prod/checkout/Deployment/api"
    assert notice.alert_url == "https://costwarden.example.com/api/v1/recommendations"


def test_recommendation_minimum_savings():
    below = notify_settings(recommendation_min_savings_per_month="311.78")
    at = notify_settings(recommendation_min_savings_per_month="311.77")

    assert notices_from_recommendations([RECOMMENDATION_ITEM], below, GENERATED_AT) == []
    assert len(notices_from_recommendations([RECOMMENDATION_ITEM], at, GENERATED_AT)) == 1


def test_recommendation_severity_setting():
    settings = notify_settings(recommendation_severity="warning")

    (notice,) = notices_from_recommendations([RECOMMENDATION_ITEM], settings, GENERATED_AT)

    assert notice.severity == "warning"


def test_recommendation_labels_by_cluster_name():
    fleet = FleetLabels(
        clusters={"payments-prod": {"team": "payments"}},
        namespaces={("payments-prod", "checkout"): {"team": "checkout"}},
    )

    (notice,) = notices_from_recommendations(
        [RECOMMENDATION_ITEM], notify_settings(), GENERATED_AT, fleet=fleet
    )

    assert notice.labels == {"team": "checkout"}

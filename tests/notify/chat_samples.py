"""Notices and deliveries for the Slack and Teams tests: a typical alert and a huge one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from costwarden.notify.notice import Notice, NoticeAction, NoticeContributor
from costwarden.notify.registry import ActionLinks, Delivery

ALERT_ID = "ba-3f9c2e1d7a60b4c2"
PUBLIC_URL = "https://costwarden.example.com"
ALERT_URL = f"{PUBLIC_URL}/api/v1/alerts/{ALERT_ID}"
PALETTE_URL = "https://console.spectrocloud.com/projects/p-1/clusters/c-1/overview"
GENERATED_AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def sample_notice(**changes: Any) -> Notice:
    notice = Notice(
        alert_id=ALERT_ID,
        kind="budget",
        severity="critical",
        title="prod-analytics will exceed its monthly budget on 2026-11-24",
        generated_at=GENERATED_AT,
        budget="prod-analytics",
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        currency="USD",
        labels={"team": "data"},
        owners=("data", "finops"),
        facts=(
            ("Budget", "10,000.00 USD"),
            ("Spent", "9,214.07 USD"),
            ("Forecast", "11,380.00 USD"),
            ("Probability", "93%"),
            ("Breach date", "2026-11-24"),
        ),
        probability=0.93,
        breach_date=date(2026, 11, 24),
        overspend=1380.0,
        contributors=(
            NoticeContributor("prod-eu-1", "cluster", "1,204.50 USD", 0.41),
            NoticeContributor("spark-jobs", "namespace", "610.00 USD", 0.2),
        ),
        actions=(
            NoticeAction("rightsize-gpu", "Rightsize gpu-pool to 3 nodes", "310.00 USD",
                         "https://console.spectrocloud.com/projects/p-1/clusters/c-1/nodes"),
        ),
        palette_url=PALETTE_URL,
        alert_url=ALERT_URL,
    )
    return replace(notice, **changes)


def huge_notice(**changes: Any) -> Notice:
    """An alert far over every message limit: long names with markup characters, 300
    contributors, 200 actions, 15 long facts and 30 owners."""
    long_name = "namespace-" + "<&>" * 40 + "x" * 300
    contributors = tuple(
        NoticeContributor(f"{long_name}-{index}", "namespace", f"{index},000.00 USD", 0.003)
        for index in range(300)
    )
    actions = tuple(
        NoticeAction(f"action-{index}", f"Rightsize {long_name}-{index} " * 3, "1,234.56 USD",
                     f"https://console.spectrocloud.com/projects/p-1/actions/{index}")
        for index in range(200)
    )
    facts = tuple((f"Fact {index} " * 20, "9" * 2500) for index in range(15))
    owners = tuple(f"team-{index}" for index in range(30))
    values: dict[str, Any] = {
        "title": "T" * 400, "budget": "b" * 255, "contributors": contributors,
        "actions": actions, "facts": facts, "owners": owners,
    }
    return sample_notice(**{**values, **changes})


def make_delivery(
    event: str = "trigger",
    notices: tuple[Notice, ...] | None = None,
    *,
    channel: str = "chat",
    ref: str | None = None,
    links: dict[str, ActionLinks] | None = None,
) -> Delivery:
    return Delivery(
        id="row-1",
        channel=channel,
        event=event,  # type: ignore[arg-type]
        notices=notices or (sample_notice(),),
        created_at=GENERATED_AT,
        external_ref=ref,
        links=links or {},
    )

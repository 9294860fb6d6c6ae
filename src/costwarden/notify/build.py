"""Build notices from the stored alert payloads and from a pass's recommendations.

Each builder formats the figures for people (money with its ISO 4217 currency, probabilities as
percents, dates in ISO 8601) and keeps the raw values that noise control compares. Labels come
from the payload (budget labels, equality terms of a budget's label selector) and from the
labels stored for the clusters and namespaces of the alert's scope.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from costwarden.config import NotifySettings
from costwarden.domain.selector import parse_selector
from costwarden.notify.notice import Notice, NoticeAction, NoticeContributor
from costwarden.notify.registry import ChannelContext

MAX_CONTRIBUTORS = 5
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class FleetLabels:
    """Stored cluster and namespace labels, looked up by cluster uid or name."""

    clusters: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Labels by cluster uid and by cluster name."""
    namespaces: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)
    """Labels by (cluster uid or name, namespace name)."""

    def for_scope(self, cluster: str | None, namespace: str | None = None) -> dict[str, str]:
        """Return the cluster's labels, overridden by the namespace's labels when it has any."""
        if cluster is None:
            return {}
        labels = dict(self.clusters.get(cluster, {}))
        if namespace is not None:
            labels.update(self.namespaces.get((cluster, namespace), {}))
        return labels


def money(value: float | Decimal | str | None, currency: str | None) -> str:
    """Format an amount as ``1,234.50 USD``; ``-`` when the amount is unknown."""
    if value is None:
        return "-"
    amount = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    text = f"{amount:,.2f}"
    return f"{text} {currency}" if currency else text


def percent(value: float | None) -> str:
    """Format a probability or a share as a percent, such as ``87%``."""
    if value is None:
        return "-"
    return f"{value:.0%}"


def notice_from_budget_payload(
    payload: Mapping[str, Any],
    settings: NotifySettings,
    *,
    context: ChannelContext | None = None,
) -> Notice:
    """Build the notice of a budget alert payload (``docs/schemas/alert.schema.json``)."""
    budget = payload["budget"]
    currency = payload["currency"]
    labels = _budget_labels(payload)
    period = payload["period"]

    return Notice(
        alert_id=payload["alert_id"],
        kind="budget",
        severity=payload["severity"],
        title=payload["title"],
        generated_at=_timestamp(payload["generated_at"]),
        budget=budget["name"],
        period_start=date.fromisoformat(period["start"]),
        period_end=date.fromisoformat(period["end"]),
        currency=currency,
        labels=labels,
        owners=_owners(budget.get("owner"), labels, settings.owner_labels),
        facts=_budget_facts(payload),
        probability=payload.get("exceedance_probability"),
        breach_date=_date(payload.get("breach_date")),
        overspend=(payload.get("overspend") or {}).get("expected"),
        contributors=_budget_contributors(payload.get("contributors", ()), currency),
        actions=tuple(_action(item) for item in payload.get("recommended_actions", ())),
        palette_url=(payload.get("links") or {}).get("palette"),
        alert_url=_alert_url(payload["alert_id"], settings, context),
    )


def _budget_facts(payload: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    currency = payload["currency"]
    forecast = payload["forecast"]
    interval = forecast.get("interval_80") or {}
    period = payload["period"]

    facts = [
        ("Budget", money(payload["budget"]["amount"], currency)),
        ("Period", f"{period['start']} to {period['end']}"),
        ("Spent to date", money(payload.get("spend_to_date"), currency)),
        (
            "Forecast",
            f"{money(forecast.get('total'), currency)} (80% interval "
            f"{money(interval.get('lower'), None)} to {money(interval.get('upper'), currency)})",
        ),
        ("Probability of exceeding", percent(payload.get("exceedance_probability"))),
    ]
    if payload.get("already_exceeded"):
        facts.append(("Breach date", "already exceeded"))
    elif payload.get("breach_date"):
        facts.append(("Breach date", payload["breach_date"]))
    overspend = (payload.get("overspend") or {}).get("expected")
    facts.append(("Expected overspend", money(overspend, currency)))
    return tuple(facts)


def _budget_contributors(
    items: Iterable[Mapping[str, Any]], currency: str
) -> tuple[NoticeContributor, ...]:
    contributors = [
        NoticeContributor(
            name=item["name"],
            kind=item["kind"],
            amount=money(item.get("growth"), currency),
            share=item.get("share_of_growth"),
        )
        for item in items
    ]
    return tuple(contributors[:MAX_CONTRIBUTORS])


def _budget_labels(payload: Mapping[str, Any]) -> dict[str, str]:
    """Return the budget's labels, completed by the ``key=value`` terms of its label selector."""
    labels: dict[str, str] = {}
    selector = (payload.get("scope") or {}).get("labels")
    if selector:
        try:
            requirements = parse_selector(selector)
        except ValueError:
            requirements = ()
        for requirement in requirements:
            if requirement.operator == "=" or (
                requirement.operator == "in" and len(requirement.values) == 1
            ):
                labels[requirement.key] = requirement.values[0]
    labels.update(payload["budget"].get("labels") or {})
    return labels


def notice_from_anomaly_payload(
    payload: Mapping[str, Any],
    settings: NotifySettings,
    *,
    context: ChannelContext | None = None,
    fleet: FleetLabels | None = None,
) -> Notice:
    """Build the notice of an anomaly alert payload (``docs/schemas/anomaly-alert.schema.json``).

    An anomaly whose status is ``resolved`` gives a notice in state ``resolved``.
    ``overspend`` is the cost impact per day, so a notice is sent again when the daily impact
    changes materially, not every day that an ongoing anomaly adds to its total.
    """
    scope = payload["scope"]
    cluster = (scope.get("cluster") or {}).get("uid")
    labels = (fleet or FleetLabels()).for_scope(cluster, scope.get("namespace"))
    currency = payload.get("currency")
    metric = payload.get("metric", "cost")

    return Notice(
        alert_id=payload["alert_id"],
        kind="anomaly",
        severity=payload["severity"],
        title=payload["title"],
        generated_at=_timestamp(payload["generated_at"]),
        state="resolved" if payload.get("status") == "resolved" else "firing",
        currency=currency,
        labels=labels,
        owners=_owners(None, labels, settings.owner_labels),
        facts=_anomaly_facts(payload),
        overspend=(payload.get("impact") or {}).get("per_day"),
        contributors=_anomaly_contributors(payload.get("contributors", ()), metric, currency),
        palette_url=(payload.get("links") or {}).get("palette"),
        alert_url=_alert_url(payload["alert_id"], settings, context),
    )


def _anomaly_facts(payload: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    values = payload.get("values") or {}
    impact = payload.get("impact") or {}
    triage = payload.get("triage") or {}
    metric = payload.get("metric", "cost")
    currency = payload.get("currency")

    def amount(value: float | None) -> str:
        if metric == "cost":
            return money(value, currency)
        return "-" if value is None else f"{value:,.1f} {values.get('unit', '')}".rstrip()

    facts = [
        ("Scope", payload["scope"]["description"]),
        ("Metric", metric),
        ("Expected per day", amount(values.get("expected_per_day"))),
        ("Actual per day", amount(values.get("actual_per_day"))),
    ]
    if impact.get("per_day") is not None:
        facts.append(("Impact per day", money(impact["per_day"], currency)))
    if impact.get("total") is not None:
        facts.append(("Impact so far", money(impact["total"], currency)))
    if impact.get("percent") is not None:
        facts.append(("Change", f"{impact['percent']:+.0%}"))
    facts.append(("Since", payload["first_day"]))
    facts.append(("Status", payload.get("status", "ongoing")))
    facts.append(("Likely cause", triage.get("likely_cause", "cause unknown")))
    return tuple(facts)


def _anomaly_contributors(
    items: Iterable[Mapping[str, Any]], metric: str, currency: str | None
) -> tuple[NoticeContributor, ...]:
    contributors = []
    for item in items:
        delta = item.get("delta")
        if metric == "cost":
            amount = money(delta, currency) if delta is not None else None
        else:
            amount = None if delta is None else f"{delta:+,.1f}"
        contributors.append(
            NoticeContributor(
                name=item["value"], kind=item["dimension"], amount=amount, share=item.get("share")
            )
        )
    return tuple(contributors[:MAX_CONTRIBUTORS])


def notice_from_quota_payload(
    payload: Mapping[str, Any],
    settings: NotifySettings,
    *,
    context: ChannelContext | None = None,
    fleet: FleetLabels | None = None,
) -> Notice:
    """Build the notice of a quota alert payload (``docs/schemas/quota-alert.schema.json``)."""
    scope = payload["scope"]
    cluster = (scope.get("cluster") or {}).get("uid")
    labels = (fleet or FleetLabels()).for_scope(cluster, scope.get("namespace"))

    return Notice(
        alert_id=payload["alert_id"],
        kind="quota",
        severity=payload["severity"],
        title=payload["title"],
        generated_at=_timestamp(payload["generated_at"]),
        labels=labels,
        owners=_owners(None, labels, settings.owner_labels),
        facts=_quota_facts(payload),
        probability=payload.get("probability"),
        breach_date=_date(payload.get("breach_date")),
        palette_url=(payload.get("links") or {}).get("palette"),
        alert_url=_alert_url(payload["alert_id"], settings, context),
    )


def _quota_facts(payload: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    unit = payload.get("unit", "")
    limit = payload.get("limit") or {}
    usage = payload.get("current_usage") or {}
    window = payload.get("window") or {}

    def amount(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f} {unit}".rstrip()

    facts = [
        ("Scope", payload["scope"]["description"]),
        ("Resource", payload.get("resource", "-")),
        ("Limit", f"{amount(limit.get('value'))} ({str(limit.get('kind', '')).replace('_', ' ')})"),
        ("Current usage", f"{amount(usage.get('value'))} on {usage.get('day') or '-'}"),
        ("Utilisation", percent(usage.get("utilisation"))),
    ]
    if payload.get("already_at_limit"):
        facts.append(("Breach date", f"at the limit since {payload.get('breach_date') or '-'}"))
    else:
        facts.append(("Breach date", payload.get("breach_date") or "-"))
        facts.append(("Probability of reaching the limit", percent(payload.get("probability"))))
    if window:
        facts.append(("Window", f"{window.get('start')} to {window.get('end')}"))
    return tuple(facts)


def notices_from_recommendations(
    items: Iterable[Mapping[str, Any]],
    settings: NotifySettings,
    generated_at: datetime,
    *,
    context: ChannelContext | None = None,
    fleet: FleetLabels | None = None,
) -> list[Notice]:
    """Build one notice per recommendation (``Recommendation.to_dict()``) that saves enough.

    Items saving less than ``notify.recommendation_min_savings_per_month`` are left out.
    """
    notices = []
    for item in items:
        per_month = Decimal(str(item["savings"]["per_month"]))
        if per_month <= 0 or per_month < settings.recommendation_min_savings_per_month:
            continue
        notices.append(_recommendation_notice(item, settings, generated_at, context, fleet))
    return notices


def recommendation_alert_id(item_id: str) -> str:
    """Return the notice id of a recommendation, stable while the proposal stays the same."""
    return hashlib.sha256(f"recommendation\x1f{item_id}".encode()).hexdigest()[:32]


def _recommendation_notice(
    item: Mapping[str, Any],
    settings: NotifySettings,
    generated_at: datetime,
    context: ChannelContext | None,
    fleet: FleetLabels | None,
) -> Notice:
    savings = item["savings"]
    target = item.get("target") or {}
    labels = (fleet or FleetLabels()).for_scope(target.get("cluster"), target.get("namespace"))
    facts = (
        ("Target", _target_text(target)),
        ("Savings per month", money(savings["per_month"], savings["currency"])),
        ("Confidence", str(item.get("confidence", "-"))),
        ("Risk", str(item.get("risk", "-"))),
        ("Effort", str(item.get("effort", "-"))),
        ("Reversible", "yes" if item.get("reversible") else "no"),
    )

    return Notice(
        alert_id=recommendation_alert_id(item["id"]),
        kind="recommendation",
        severity=settings.recommendation_severity,
        title=item["title"],
        generated_at=generated_at,
        currency=savings["currency"],
        labels=labels,
        owners=_owners(None, labels, settings.owner_labels),
        facts=facts,
        actions=(_action(item),),
        palette_url=item.get("ui_link"),
        alert_url=_recommendations_url(settings, context),
    )


def _target_text(target: Mapping[str, Any]) -> str:
    parts = [target.get("cluster") or "-"]
    if target.get("namespace"):
        parts.append(target["namespace"])
    parts.append(f"{target.get('kind', '-')}/{target.get('name', '-')}")
    text = "/".join(parts)
    if target.get("pool"):
        text += f" (pool {target['pool']})"
    return text


def _action(item: Mapping[str, Any]) -> NoticeAction:
    """Build a notice action from a recommended action of an alert payload or a recommendation."""
    savings = item.get("savings") or {}
    per_month = savings.get("per_month")
    return NoticeAction(
        id=item["id"],
        title=item["title"],
        savings_per_month=None if per_month is None else money(per_month, savings.get("currency")),
        link=item.get("ui_link") or _api_call_text(item.get("api_call")),
    )


def _api_call_text(call: Mapping[str, Any] | None) -> str | None:
    if not call:
        return None
    return f"{call['method']} {call['path']}"


def _owners(
    owner: str | None, labels: Mapping[str, str], owner_labels: Iterable[str]
) -> tuple[str, ...]:
    """Return the budget owner, then the values of the owner labels, without repeats."""
    owners: list[str] = []
    candidates = [owner] + [labels.get(key) for key in owner_labels]
    for candidate in candidates:
        if candidate and candidate not in owners:
            owners.append(candidate)
    return tuple(owners)


def _alert_url(
    alert_id: str, settings: NotifySettings, context: ChannelContext | None
) -> str | None:
    context = context or ChannelContext(public_url=settings.public_url)
    return context.alert_url(alert_id)


def _recommendations_url(settings: NotifySettings, context: ChannelContext | None) -> str | None:
    public_url = context.public_url if context is not None else settings.public_url
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/api/v1/recommendations"


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)

"""Routing rules: kinds, severity, budget globs, labels, placeholders and stop."""

from __future__ import annotations

import logging

import pytest
from notify_samples import WEBHOOK, notice, notify_settings
from pydantic import ValidationError

from costwarden.notify.routing import Router

CHANNELS = {
    name: dict(WEBHOOK)
    for name in ("ops", "finops", "pager", "slack-payments", "slack-ml", "jira-prod")
}


def router(*routes: dict) -> Router:
    return Router(notify_settings(channels=CHANNELS, routes=list(routes)))


def channels(found: list[tuple[str, str]]) -> list[str]:
    return [channel for channel, _ in found]


def test_rule_without_conditions_takes_all():
    found = router({"name": "all", "channels": ["ops"]}).route(notice(severity="info"))

    assert found == [("ops", "all")]


@pytest.mark.parametrize(
    ("kind", "expected"), [("budget", ["ops"]), ("anomaly", ["ops"]), ("quota", [])]
)
def test_kinds(kind, expected):
    rules = router({"name": "r", "kinds": ["budget", "anomaly"], "channels": ["ops"]})

    assert channels(rules.route(notice(kind=kind))) == expected


@pytest.mark.parametrize(
    ("severity", "expected"), [("info", []), ("warning", ["pager"]), ("critical", ["pager"])]
)
def test_min_severity(severity, expected):
    rules = router({"name": "r", "min_severity": "warning", "channels": ["pager"]})

    assert channels(rules.route(notice(severity=severity))) == expected


@pytest.mark.parametrize(
    ("budget", "expected"),
    [("prod-monthly", ["ops"]), ("dev-monthly", []), ("shared", ["ops"]), (None, [])],
)
def test_budget_globs(budget, expected):
    rules = router({"name": "r", "budgets": ["prod-*", "shared"], "channels": ["ops"]})

    assert channels(rules.route(notice(budget=budget))) == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"env": "prod", "team": "payments"}, ["ops"]),
        ({"env": "prod", "team": "ml"}, ["ops"]),
        ({"env": "prod", "team": "search"}, []),
        ({"env": "dev", "team": "payments"}, []),
        ({"team": "payments"}, []),
    ],
)
def test_labels_exact_and_list(labels, expected):
    rules = router({"name": "r", "labels": {"env": "prod", "team": ["payments", "ml"]},
                    "channels": ["ops"]})

    assert channels(rules.route(notice(labels=labels))) == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [({"cost-center": "cc-1"}, ["finops"]), ({"cost-center": ""}, ["finops"]), ({}, [])],
)
def test_label_star_means_present(labels, expected):
    rules = router({"name": "r", "labels": {"cost-center": "*"}, "channels": ["finops"]})

    assert channels(rules.route(notice(labels=labels))) == expected


def test_label_glob():
    rules = router({"name": "r", "labels": {"env": "prod-*"}, "channels": ["ops"]})

    assert channels(rules.route(notice(labels={"env": "prod-eu"}))) == ["ops"]
    assert channels(rules.route(notice(labels={"env": "staging"}))) == []


def test_placeholder_filled_from_labels():
    rules = router({"name": "teams", "channels": ["slack-{team}"]})

    assert rules.route(notice(labels={"team": "payments"})) == [("slack-payments", "teams")]
    assert rules.route(notice(labels={"team": "ml"})) == [("slack-ml", "teams")]


def test_placeholder_with_two_labels():
    rules = router({"name": "r", "channels": ["{tool}-{env}"]})

    assert channels(rules.route(notice(labels={"tool": "jira", "env": "prod"}))) == ["jira-prod"]


def test_missing_label_skipped_with_one_warning(caplog):
    rules = router({"name": "teams", "channels": ["slack-{team}", "ops"]})
    caplog.set_level(logging.WARNING, logger="costwarden.notify.routing")

    first = rules.route(notice(labels={}))
    second = rules.route(notice(alert_id="c" * 32, labels={}))

    assert channels(first) == ["ops"]
    assert channels(second) == ["ops"]
    warnings = [r for r in caplog.records if "needs the label" in r.getMessage()]
    assert len(warnings) == 1
    assert "'team'" in warnings[0].getMessage()


def test_unknown_filled_channel_skipped_with_one_warning(caplog):
    rules = router({"name": "teams", "channels": ["slack-{team}"]})
    caplog.set_level(logging.WARNING, logger="costwarden.notify.routing")

    for _ in range(3):
        assert rules.route(notice(labels={"team": "search"})) == []

    warnings = [r for r in caplog.records if "slack-search" in r.getMessage()]
    assert len(warnings) == 1


def test_new_router_warns_again(caplog):
    caplog.set_level(logging.WARNING, logger="costwarden.notify.routing")
    rule = {"name": "teams", "channels": ["slack-{team}"]}

    router(rule).route(notice(labels={}))
    router(rule).route(notice(labels={}))

    assert len([r for r in caplog.records if "needs the label" in r.getMessage()]) == 2


def test_channels_deduplicated_first_route_kept():
    rules = router(
        {"name": "first", "channels": ["ops", "finops"]},
        {"name": "second", "channels": ["finops", "pager"]},
    )

    assert rules.route(notice()) == [("ops", "first"), ("finops", "first"), ("pager", "second")]


def test_stop_ends_matching():
    rules = router(
        {"name": "prod", "labels": {"env": "prod"}, "channels": ["pager"], "stop": True},
        {"name": "rest", "channels": ["ops"]},
    )

    assert rules.route(notice(labels={"env": "prod"})) == [("pager", "prod")]
    assert rules.route(notice(labels={"env": "dev"})) == [("ops", "rest")]


def test_stop_on_rule_that_does_not_match():
    rules = router(
        {"name": "never", "kinds": ["quota"], "channels": ["pager"], "stop": True},
        {"name": "rest", "channels": ["ops"]},
    )

    assert rules.route(notice()) == [("ops", "rest")]


def test_no_rules_no_channels():
    assert router().route(notice()) == []


def test_route_to_undefined_channel_is_a_config_error():
    with pytest.raises(ValidationError, match="nowhere"):
        notify_settings(routes=[{"name": "r", "channels": ["nowhere"]}])


def test_unknown_digest_timezone_is_a_config_error():
    with pytest.raises(ValidationError, match="IANA time zone"):
        notify_settings(noise={"digest_timezone": "Mars/Olympus"})

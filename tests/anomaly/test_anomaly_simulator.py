"""End to end on the Palette simulator: one pass finds every planted anomaly with the right root
cause, and earlier passes over the simulated history raise almost no false alerts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import select

from costwarden.anomaly import evaluate_anomalies
from costwarden.config import PaletteSettings, Settings
from costwarden.domain.anomaly import Anomaly
from costwarden.pipeline import RunResult, run_pass
from costwarden.simulator import SimulatorServer, SimulatorSettings
from costwarden.simulator.anomalies import PLANTED_ANOMALIES, PlantedAnomaly
from costwarden.simulator.planted import PLANTED
from costwarden.store import Store
from costwarden.store.tables import AlertRecord

AS_OF = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "schemas" / "anomaly-alert.schema.json").read_text())
PASSES = 9
"""Passes 14 days apart: together they check the 126 days before ``AS_OF``."""
KNOWN_STORIES = {anomaly.cluster for anomaly in PLANTED_ANOMALIES.values()} | set(PLANTED)
"""Clusters with a planted cost story: the anomalies, and the overrun and stable clusters."""


@pytest.fixture(scope="module")
def simulated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Store, Settings, RunResult]]:
    path = tmp_path_factory.mktemp("anomaly-sim") / "costwarden.db"
    simulator = SimulatorServer(SimulatorSettings(seed=7, as_of=AS_OF, rate_limit_enabled=False))
    with simulator:
        settings = Settings(
            database_url=f"sqlite:///{path}",
            palette=PaletteSettings(url=simulator.url, api_key=simulator.api_key),
        )
        store = Store.open(settings.database_url)
        result = run_pass(store, settings, [], AS_OF)
    yield store, settings, result
    store.close()


def _match(planted: PlantedAnomaly, anomalies: tuple[Anomaly, ...]) -> Anomaly:
    found = [
        anomaly
        for anomaly in anomalies
        if anomaly.scope.cluster_name == planted.cluster and anomaly.cause == planted.cause
    ]
    assert len(found) == 1, [(a.scope.describe(), a.cause) for a in anomalies]
    return found[0]


@pytest.mark.parametrize("name", sorted(PLANTED_ANOMALIES))
def test_planted_anomaly_found_with_root_cause(simulated, name: str) -> None:  # type: ignore[no-untyped-def]
    _, _, result = simulated
    planted = PLANTED_ANOMALIES[name]
    first, last = planted.dates(AS_OF)

    anomaly = _match(planted, result.anomalies.anomalies)

    top = anomaly.top_contributor
    assert top is not None
    assert (top.dimension, top.value) == planted.top_contributor
    assert first <= anomaly.first_day <= first + timedelta(days=1)
    if last is None:
        assert anomaly.status == "ongoing"
    else:
        assert anomaly.status == "resolved"
        assert anomaly.last_day == last
    if planted.extra_cost_per_day > 0:
        assert anomaly.kind == planted.kind
        impact = float(anomaly.impact_per_day or 0)
        assert impact == pytest.approx(float(planted.extra_cost_per_day), rel=0.25)
    if planted.event_reason is not None:
        assert planted.event_reason in {event.reason for event in anomaly.events}


def test_only_planted_clusters_alert_at_as_of(simulated) -> None:  # type: ignore[no-untyped-def]
    _, _, result = simulated
    report = result.anomalies

    assert len(report.anomalies) == len(PLANTED_ANOMALIES)
    assert report.scopes_checked > 400
    assert report.related, "namespaces and groups that rose with a cluster are listed under it"


def test_pass_payloads_validate_and_are_recorded(simulated) -> None:  # type: ignore[no-untyped-def]
    store, _, result = simulated
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())

    for payload in result.anomaly_alerts:
        assert list(validator.iter_errors(payload)) == []
    assert result.payloads()[-len(result.anomaly_alerts) :] == list(result.anomaly_alerts)
    with store.transaction() as session:
        kinds = session.scalars(
            select(AlertRecord.kind).where(AlertRecord.kind.startswith("anomaly"))
        )
        assert len(list(kinds)) == len(PLANTED_ANOMALIES)


def test_false_alerts_below_one_per_thousand_scope_days(simulated) -> None:  # type: ignore[no-untyped-def]
    store, settings, _ = simulated
    scope_days = 0
    false_alerts = []
    for index in range(PASSES):
        as_of = AS_OF - timedelta(days=14 * index)
        with store.transaction() as session:
            report = evaluate_anomalies(session, settings, as_of, as_of)
        scope_days += report.scope_days
        false_alerts.extend(
            (as_of.date(), anomaly.scope.describe())
            for anomaly in report.anomalies
            if not _on_known_story(anomaly)
        )

    assert scope_days > 45_000
    assert len(false_alerts) <= scope_days / 1000, false_alerts


def _on_known_story(anomaly: Anomaly) -> bool:
    top = anomaly.top_contributor
    names = {anomaly.scope.cluster_name}
    if top is not None and top.dimension == "cluster":
        names.add(top.value)
    return bool(names & KNOWN_STORIES)

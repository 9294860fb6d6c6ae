"""Scheduled jobs in budget evaluation: matching rules, future days only, and the alert payload."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from costwarden.budgets import parse_budgets
from costwarden.budgets.alerts import alert_payload, crossed_thresholds
from costwarden.budgets.evaluate import evaluate_budget
from costwarden.budgets.scheduled import job_places, scope_covers
from costwarden.config import load_settings
from costwarden.domain import ClusterInfo, CostRecord, NamespaceInfo, ProjectInfo
from costwarden.domain.schedule import JobScope, ScheduledJob
from costwarden.sources.calendar import load_calendar
from costwarden.store import Store, upsert_facts, upsert_fleet

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "schemas" / "alert.schema.json").read_text()
)
AS_OF = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
FIRST_DAY = date(2026, 9, 1)

BUDGETS = """
defaults: {currency: USD}
budgets:
  - name: cluster-by-name
    scope: {cluster: ml-cluster}
    amount: 3300
    thresholds:
      - {type: forecast, percent: 100, probability: 0.8}
      - {type: actual, percent: 10, severity: info}
  - name: cluster-by-uid
    scope: {cluster: c1}
    amount: 100000
    thresholds: [{type: actual, percent: 100}]
  - name: project
    scope: {project: ml-project}
    amount: 100000
    thresholds: [{type: actual, percent: 100}]
  - name: other-project
    scope: {project: other-project}
    amount: 100000
    thresholds: [{type: actual, percent: 100}]
  - name: training-namespace
    scope: {namespace: training}
    amount: 100000
    thresholds: [{type: actual, percent: 100}]
  - name: web-namespace
    scope: {namespace: web}
    amount: 100000
    thresholds: [{type: actual, percent: 100}]
  - name: team-ml
    scope: {labels: "team=ml"}
    amount: 100000
    thresholds: [{type: actual, percent: 100}]
  - name: in-euro
    scope: {cluster: ml-cluster}
    currency: EUR
    amount: 100000
    thresholds: [{type: actual, percent: 100}]
"""

CALENDAR = """
name,start,end,duration,rrule,cost,currency,cluster,project,namespace,labels,in_history
Past run,2026-11-10T08:00:00Z,,PT4H,,500,USD,ml-cluster,,training,,
Overnight run,2026-11-15T18:00:00Z,2026-11-16T06:00:00Z,,,120,USD,ml-cluster,,training,,
Weekly training,2026-11-21T10:00:00Z,,PT10H,FREQ=WEEKLY;BYDAY=SA,200,USD,c1,,training,,
Nightly export,2026-11-01T02:00:00Z,,PT1H,FREQ=DAILY,10,USD,ml-cluster,,,,true
Other cluster job,2026-11-20T00:00:00Z,,PT2H,,1000,USD,other-cluster,,,,
Project-wide job,2026-11-25T00:00:00Z,,PT2H,,30,USD,,ml-project,,,
"""


def _fact(grain, day, amount, cluster_uid="c1", cluster_name="ml-cluster", namespace=None):
    start = datetime.combine(day, datetime.min.time(), UTC)
    return CostRecord(
        source="palette",
        grain=grain,
        period_start=start,
        period_end=start + timedelta(days=1),
        amount=Decimal(amount),
        currency="USD",
        cloud="aws",
        project_uid="p1" if cluster_uid == "c1" else "p2",
        project_name="ml-project" if cluster_uid == "c1" else "other-project",
        cluster_uid=cluster_uid,
        cluster_name=cluster_name,
        namespace=namespace,
    )


def _populate(store):
    """Store ml-cluster at exactly 100 a day (training 60, web 40) and other-cluster at 50."""
    records = []
    day = FIRST_DAY
    while day < AS_OF.date():
        records += [
            _fact("cluster", day, "100"),
            _fact("namespace", day, "60", namespace="training"),
            _fact("namespace", day, "40", namespace="web"),
            _fact("cluster", day, "50", "c2", "other-cluster"),
        ]
        day += timedelta(days=1)

    with store.transaction() as session:
        upsert_fleet(
            session,
            [ProjectInfo("p1", "ml-project"), ProjectInfo("p2", "other-project")],
            [
                ClusterInfo("c1", "ml-cluster", "p1", "ml-project", "aws", labels={"env": "dev"}),
                ClusterInfo("c2", "other-cluster", "p2", "other-project", "aws"),
            ],
            [NamespaceInfo("c1", "training", {"team": "ml"}), NamespaceInfo("c1", "web", {})],
        )
        upsert_facts(session, records, batch_id="test")
    return store


@pytest.fixture
def fleet_store(store):
    """The fleet on a fresh SQLite and a fresh PostgreSQL database."""
    return _populate(store)


@pytest.fixture(scope="module")
def sqlite_fleet(tmp_path_factory):
    """The fleet on one SQLite file shared by the tests of this module that only read it."""
    opened = Store.open(f"sqlite:///{tmp_path_factory.mktemp('fleet') / 'costwarden.db'}")
    yield _populate(opened)
    opened.close()


@pytest.fixture
def calendar(write_csv):
    return load_calendar(write_csv(CALENDAR))


def _evaluate(store, name, calendar=None):
    settings = load_settings(forecast__sample_paths=500)
    budget = next(b for b in parse_budgets(BUDGETS) if b.name == name)
    with store.transaction() as session:
        return evaluate_budget(session, budget, AS_OF, settings, calendar=calendar)


def _names(status):
    return sorted({occurrence.name for occurrence in status.scheduled.occurrences})


def test_only_future_days_are_added(fleet_store, calendar):
    plain = _evaluate(fleet_store, "cluster-by-name")
    status = _evaluate(fleet_store, "cluster-by-name", calendar)

    scheduled = status.scheduled
    # Half of the overnight run falls on 16 November, the first forecast day; two Saturdays are
    # left in November; the project-wide job names no cluster.
    assert scheduled.total == Decimal(60) + 2 * Decimal(200)
    assert _names(status) == ["Nightly export", "Overnight run", "Weekly training"]
    overnight = next(o for o in scheduled.occurrences if o.name == "Overnight run")
    assert overnight.cost == Decimal(60)
    assert overnight.start == datetime(2026, 11, 15, 18, tzinfo=UTC)
    assert status.spent_to_date == plain.spent_to_date == Decimal(1500)
    mean_shift = status.exceedance.forecast_mean_total - plain.exceedance.forecast_mean_total
    assert float(mean_shift) == pytest.approx(460, abs=0.05)
    assert plain.scheduled is None


def test_in_history_jobs_listed_not_added(sqlite_fleet, calendar):
    status = _evaluate(sqlite_fleet, "cluster-by-name", calendar)

    exports = [o for o in status.scheduled.occurrences if o.name == "Nightly export"]

    assert len(exports) == 15
    assert all(o.in_history for o in exports)
    assert {o.start.date() for o in exports} == {date(2026, 11, d) for d in range(16, 31)}
    assert sum(o.cost for o in exports) == Decimal(150)
    assert status.scheduled.total == Decimal(460)


def test_forecast_beyond_period_includes_later_runs(sqlite_fleet, calendar):
    status = _evaluate(sqlite_fleet, "cluster-by-name", calendar)

    component = status.forecast.params["scheduled"]

    assert component["days"]["2026-12-05"] == pytest.approx(200)
    assert component["days"]["2026-11-16"] == pytest.approx(60)
    assert "2026-11-15" not in component["days"]
    assert max(o.start for o in status.scheduled.occurrences).date() < date(2026, 12, 1)


def test_scheduled_cost_raises_exceedance(sqlite_fleet, calendar):
    plain = _evaluate(sqlite_fleet, "cluster-by-name")
    status = _evaluate(sqlite_fleet, "cluster-by-name", calendar)

    # The model forecasts about 3,000 for November; the scheduled 460 push it over 3,300. The
    # running total is 3,260 after the run on 28 November and 3,360 a day later.
    assert plain.exceedance.probability < 0.2
    assert status.exceedance.probability > 0.8
    assert status.exceedance.breach_date == date(2026, 11, 29)


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        ("cluster-by-uid", ["Nightly export", "Overnight run", "Weekly training"]),
        ("project", ["Nightly export", "Overnight run", "Project-wide job", "Weekly training"]),
        ("training-namespace", ["Overnight run", "Weekly training"]),
        ("team-ml", ["Overnight run", "Weekly training"]),
    ],
)
def test_budget_scope_selects_jobs(sqlite_fleet, calendar, budget, expected):
    status = _evaluate(sqlite_fleet, budget, calendar)

    assert _names(status) == expected


def test_other_project_gets_its_cluster_job_only(sqlite_fleet, calendar):
    status = _evaluate(sqlite_fleet, "other-project", calendar)

    assert _names(status) == ["Other cluster job"]
    assert status.scheduled.total == Decimal(1000)


def test_unrelated_budget_gets_no_component(sqlite_fleet, calendar):
    status = _evaluate(sqlite_fleet, "web-namespace", calendar)

    assert status.scheduled is None
    assert "scheduled" not in status.forecast.params


def test_currency_mismatch_left_out(sqlite_fleet, calendar):
    # The fleet's cost data is in USD, so a EUR budget matches no data and gets no job either.
    status = _evaluate(sqlite_fleet, "in-euro", calendar)

    assert status.scheduled is None
    assert "is in USD, not EUR" in status.problem


def test_payload_carries_component_and_validates(sqlite_fleet, calendar):
    status = _evaluate(sqlite_fleet, "cluster-by-name", calendar)

    alerts = crossed_thresholds(status, AS_OF)
    payload = alert_payload(alerts[0])

    assert [alert.kind for alert in alerts] == ["budget_forecast", "budget_actual"]

    jsonschema.validate(payload, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert payload["schema_version"] == "1.4"
    scheduled = payload["forecast"]["scheduled"]
    assert scheduled["total"] == 460.0
    weekly = [o for o in scheduled["occurrences"] if o["name"] == "Weekly training"]
    assert weekly == [
        {"name": "Weekly training", "uid": "Weekly training", "start": "2026-11-21T10:00:00Z",
         "end": "2026-11-21T20:00:00Z", "cost": 200.0, "in_history": False},
        {"name": "Weekly training", "uid": "Weekly training", "start": "2026-11-28T10:00:00Z",
         "end": "2026-11-28T20:00:00Z", "cost": 200.0, "in_history": False},
    ]


def test_payload_without_calendar_has_null_component(sqlite_fleet):
    status = _evaluate(sqlite_fleet, "cluster-by-name")

    payload = alert_payload(crossed_thresholds(status, AS_OF)[0])

    jsonschema.validate(payload, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert payload["forecast"]["scheduled"] is None


def test_schema_rejects_component_without_total(sqlite_fleet, calendar):
    status = _evaluate(sqlite_fleet, "cluster-by-name", calendar)
    payload = alert_payload(crossed_thresholds(status, AS_OF)[0])

    del payload["forecast"]["scheduled"]["total"]

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload, SCHEMA)


def test_calendar_file_setting_is_read(sqlite_fleet, write_csv):
    path = write_csv(CALENDAR, name="from-settings.csv")
    settings = load_settings(forecast__sample_paths=500, calendar_file=path)
    budget = next(b for b in parse_budgets(BUDGETS) if b.name == "cluster-by-name")

    with sqlite_fleet.transaction() as session:
        status = evaluate_budget(session, budget, AS_OF, settings)

    assert status.scheduled.total == Decimal(460)


def _job(**scope) -> ScheduledJob:
    return ScheduledJob("j", "Job", Decimal(1), "USD", JobScope(**scope), "jobs.csv, line 2")


def test_job_places_merge_stored_labels(fleet_store):
    with fleet_store.transaction() as session:
        by_name = job_places(session, _job(cluster="ml-cluster", namespace="training",
                                           labels={"tier": "gpu"}))
        by_uid = job_places(session, _job(cluster="c1"))
        project = job_places(session, _job(project="ml-project"))
        unknown = job_places(session, _job(cluster="future-cluster", project="ml-project"))

    assert len(by_name) == 1
    place = by_name[0]
    assert (place.cluster_uid, place.project_uid, place.project_name) == ("c1", "p1", "ml-project")
    assert place.labels == {"env": "dev", "team": "ml", "tier": "gpu"}
    assert by_uid[0].cluster_name == "ml-cluster"
    assert by_uid[0].namespace is None
    assert (project[0].project_uid, project[0].cluster_uid) == ("p1", None)
    assert unknown[0].stored is False
    assert unknown[0].cluster_name == "future-cluster"


COVER_CASES = [
    ({}, {"cluster": "ml-cluster"}, True),
    ({"cluster": "ml-cluster"}, {"cluster": "c1"}, True),
    ({"cluster": "c1"}, {"cluster": "ml-cluster", "namespace": "web"}, True),
    ({"cluster": "other-cluster"}, {"cluster": "ml-cluster"}, False),
    ({"project": "p1"}, {"cluster": "ml-cluster"}, True),
    ({"project": "ml-project"}, {"project": "p1"}, True),
    ({"cluster": "ml-cluster"}, {"project": "ml-project"}, False),
    ({"namespace": "training"}, {"cluster": "ml-cluster"}, False),
    ({"namespace": "training"}, {"cluster": "ml-cluster", "namespace": "training"}, True),
    ({"cluster": "ml-cluster", "namespace": "web"},
     {"cluster": "ml-cluster", "namespace": "training"}, False),
    ({"labels": "team=ml"}, {"cluster": "ml-cluster", "namespace": "training"}, True),
    ({"labels": "env=dev"}, {"cluster": "ml-cluster", "namespace": "web"}, True),
    ({"labels": "env=dev"}, {"cluster": "ml-cluster"}, False),
    ({"labels": "team=ml"}, {"cluster": "ml-cluster", "namespace": "web"}, False),
    ({"labels": "team=ml"},
     {"cluster": "ml-cluster", "namespace": "new-ns", "labels": {"team": "ml"}}, True),
    ({"provider": "aws"}, {"cluster": "ml-cluster"}, False),
    ({"cluster": "future-cluster"}, {"cluster": "future-cluster"}, True),
]


def test_scope_covers_rules(fleet_store):
    for budget_scope, job_scope, covers in COVER_CASES:
        text = "budgets:\n  - name: b\n    scope: " + json.dumps(budget_scope) + (
            "\n    amount: 1\n    thresholds: [{type: actual, percent: 100}]\n"
        )
        budget = parse_budgets(text)[0]

        with fleet_store.transaction() as session:
            places = job_places(session, _job(**job_scope))

        result = any(scope_covers(budget.scope, place) for place in places)
        assert result is covers, f"budget scope {budget_scope}, job scope {job_scope}"

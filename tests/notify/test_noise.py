"""Noise control on a real database: deduplication, material changes, snooze, resolve, digests."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from notify_samples import WEBHOOK, notice, notify_settings
from sqlalchemy import select

from costwarden.config import NoiseSettings
from costwarden.notify.noise import latest_digest_time
from costwarden.notify.notice import Notice
from costwarden.notify.outbox import EnqueueReport, collect_digests, enqueue_notices
from costwarden.notify.registry import InboundResponse
from costwarden.notify.responses import record_response
from costwarden.store import Store
from costwarden.store.tables import NotificationRecord, OutboxRecord

NOW = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
BUDGET_KINDS = ("budget",)
BUDGETS = ("prod-monthly",)


def enqueue(store: Store, settings, notices: list[Notice], now: datetime = NOW,
            budgets=BUDGETS, kinds=BUDGET_KINDS) -> EnqueueReport:
    with store.transaction() as session:
        return enqueue_notices(
            session, settings, notices, evaluated_kinds=kinds, evaluated_budgets=budgets, now=now
        )


def rows(store: Store) -> list[OutboxRecord]:
    with store.transaction() as session:
        found = session.scalars(select(OutboxRecord).order_by(OutboxRecord.created_at)).all()
        session.expunge_all()
        return list(found)


def record(store: Store, alert_id: str = "b" * 32, channel: str = "ops") -> NotificationRecord:
    with store.transaction() as session:
        found = session.get(NotificationRecord, (alert_id, channel))
        assert found is not None
        session.expunge(found)
        return found


def test_first_notice_queues_trigger(store):
    settings = notify_settings()
    first = notice()

    report = enqueue(store, settings, [first])

    assert report.triggered == 1
    assert report.queued == 1
    (row,) = rows(store)
    assert uuid.UUID(row.id).version == 4
    assert row.channel == "ops"
    assert row.event == "trigger"
    assert row.route == "all"
    assert row.alert_id == first.alert_id
    assert row.status == "pending"
    assert row.attempts == 0
    assert row.next_attempt_at == NOW
    assert [Notice.from_json(item) for item in row.notices] == [first]
    stored = record(store)
    assert stored.state == "firing"
    assert stored.period_key == "2026-11-01"
    assert stored.probability == 0.5


def test_same_alert_again_queues_nothing(store):
    settings = notify_settings()
    enqueue(store, settings, [notice()])

    report = enqueue(store, settings, [notice()], now=NOW + timedelta(hours=6))

    assert report.queued == 0
    assert report.unchanged == 1
    assert len(rows(store)) == 1
    assert record(store).last_seen_at == NOW + timedelta(hours=6)


def test_one_notice_per_budget_and_period(store):
    settings = notify_settings()
    warning = notice(alert_id="1" * 32, severity="warning")
    critical = notice(alert_id="2" * 32, severity="critical")
    other_budget = notice(alert_id="3" * 32, budget="dev-monthly", severity="warning")

    report = enqueue(store, settings, [warning, critical, other_budget],
                     budgets=("prod-monthly", "dev-monthly"))

    assert report.triggered == 2
    assert sorted(row.alert_id for row in rows(store)) == ["2" * 32, "3" * 32]


def test_covered_alert_is_not_resolved(store):
    settings = notify_settings()
    warning = notice(alert_id="1" * 32, severity="warning")
    enqueue(store, settings, [warning])
    critical = notice(alert_id="2" * 32, severity="critical")

    report = enqueue(store, settings, [warning, critical])

    assert report.triggered == 1
    assert report.resolved == 0
    assert record(store, "1" * 32).state == "firing"


def test_new_period_is_a_new_trigger(store):
    settings = notify_settings()
    enqueue(store, settings, [notice()])
    december = notice(period_start=date(2026, 12, 1), period_end=date(2026, 12, 31))

    report = enqueue(store, settings, [december], now=NOW + timedelta(days=20))

    assert report.triggered == 1
    assert [row.event for row in rows(store)] == ["trigger", "trigger"]
    assert record(store).period_key == "2026-12-01"


def test_new_alert_id_each_period(store):
    settings = notify_settings()
    enqueue(store, settings, [notice()])
    december = notice(alert_id="e" * 32, period_start=date(2026, 12, 1))

    report = enqueue(store, settings, [december], now=NOW + timedelta(days=20))

    assert report.triggered == 1
    assert report.resolved == 1
    assert sorted(row.event for row in rows(store)) == ["resolve", "trigger", "trigger"]


CHANGES = [
    ("probability just below", {"probability": 0.59}, False),
    ("probability at threshold", {"probability": 0.60}, True),
    ("probability down", {"probability": 0.40}, True),
    ("breach date just below", {"breach_date": date(2026, 11, 22)}, False),
    ("breach date at threshold", {"breach_date": date(2026, 11, 23)}, True),
    ("breach date earlier", {"breach_date": date(2026, 11, 17)}, True),
    ("breach date gone", {"breach_date": None}, True),
    ("overspend just below", {"overspend": 1199.99}, False),
    ("overspend at threshold", {"overspend": 1200.0}, True),
    ("overspend down", {"overspend": 800.0}, True),
    ("severity up", {"severity": "critical"}, True),
    ("nothing", {}, False),
]


@pytest.mark.parametrize(("case", "change", "material"), CHANGES, ids=[c[0] for c in CHANGES])
def test_material_change_thresholds(store, case, change, material):
    settings = notify_settings(noise={"digest_below": None})
    enqueue(store, settings, [notice(severity="warning")])

    report = enqueue(store, settings, [notice(**{"severity": "warning", **change})])

    assert report.updated == (1 if material else 0)
    events = [row.event for row in rows(store)]
    assert events == (["trigger", "update"] if material else ["trigger"])


def test_severity_decrease_is_not_material(store):
    settings = notify_settings(noise={"digest_below": None})
    enqueue(store, settings, [notice(severity="critical")])

    report = enqueue(store, settings, [notice(severity="warning")])

    assert report.queued == 0


def test_custom_thresholds(store):
    settings = notify_settings(
        noise={"probability_change": 0.02, "breach_date_shift_days": 1, "overspend_change": 0.01}
    )
    enqueue(store, settings, [notice()])

    assert enqueue(store, settings, [notice(probability=0.51)]).updated == 0
    assert enqueue(store, settings, [notice(probability=0.52)]).updated == 1
    assert enqueue(store, settings, [notice(probability=0.52, overspend=1010.0)]).updated == 1


def test_slow_drift_compared_with_last_sent(store):
    settings = notify_settings()
    enqueue(store, settings, [notice(probability=0.50)])

    assert enqueue(store, settings, [notice(probability=0.55)]).updated == 0
    assert enqueue(store, settings, [notice(probability=0.60)]).updated == 1
    assert enqueue(store, settings, [notice(probability=0.65)]).updated == 0
    assert record(store).probability == 0.60


def test_update_row_carries_latest_notice(store):
    settings = notify_settings()
    enqueue(store, settings, [notice()])
    changed = notice(probability=0.9, title="now 90%")

    enqueue(store, settings, [changed])

    update = rows(store)[-1]
    assert update.event == "update"
    assert [Notice.from_json(item) for item in update.notices] == [changed]


def snooze(store: Store, hours: int, at: datetime = NOW) -> None:
    response = InboundResponse(
        alert_id="b" * 32, channel="ops", action="snooze", actor="ana",
        dedupe_key=str(uuid.uuid4()), received_at=at, snooze_hours=hours,
    )
    with store.transaction() as session:
        record_response(session, response)


def test_snoozed_alert_queues_nothing(store):
    settings = notify_settings()
    enqueue(store, settings, [notice()])
    snooze(store, hours=24)

    during = enqueue(store, settings, [notice(probability=0.95)], now=NOW + timedelta(hours=12))

    assert during.queued == 0
    assert during.snoozed == 1
    assert [row.event for row in rows(store)] == ["trigger"]


def mark_sent(store: Store) -> None:
    with store.transaction() as session:
        for row in session.scalars(select(OutboxRecord)):
            row.status = "sent"


def test_snooze_ends(store):
    settings = notify_settings()
    enqueue(store, settings, [notice()])
    mark_sent(store)
    snooze(store, hours=24)

    after = enqueue(store, settings, [notice(probability=0.95)], now=NOW + timedelta(hours=25))

    assert after.updated == 1


def test_snooze_before_send_cancels_trigger(store):
    settings = notify_settings()
    enqueue(store, settings, [notice()])
    snooze(store, hours=24)

    after = enqueue(store, settings, [notice(probability=0.95)], now=NOW + timedelta(hours=25))

    assert after.triggered == 1
    assert [(row.event, row.status) for row in rows(store)] == [
        ("trigger", "cancelled"), ("trigger", "pending")
    ]


def test_resolve_when_alert_goes_away(store):
    settings = notify_settings()
    first = notice()
    enqueue(store, settings, [first])

    report = enqueue(store, settings, [], now=NOW + timedelta(days=1))

    assert report.resolved == 1
    assert report.resolve_rows == 1
    resolve = rows(store)[-1]
    assert resolve.event == "resolve"
    assert resolve.alert_id == first.alert_id
    assert resolve.notices[0]["state"] == "resolved"
    assert resolve.notices[0]["title"] == first.title
    assert record(store).state == "resolved"
    assert enqueue(store, settings, [], now=NOW + timedelta(days=2)).queued == 0


def test_resolve_notices_off(store):
    settings = notify_settings(noise={"resolve_notices": False})
    enqueue(store, settings, [notice()])

    report = enqueue(store, settings, [])

    assert report.resolved == 1
    assert report.queued == 0
    assert record(store).state == "resolved"


def test_resolved_alert_fires_again(store):
    settings = notify_settings()
    enqueue(store, settings, [notice()])
    enqueue(store, settings, [])

    report = enqueue(store, settings, [notice()], now=NOW + timedelta(days=2))

    assert report.triggered == 1
    assert [row.event for row in rows(store)] == ["trigger", "resolve", "trigger"]


def test_unevaluated_budget_keeps_alert(store):
    settings = notify_settings()
    enqueue(store, settings, [notice()])

    report = enqueue(store, settings, [], budgets=("other-budget",))

    assert report.resolved == 0
    assert record(store).state == "firing"


def test_unevaluated_kind_keeps_alert(store):
    settings = notify_settings()
    enqueue(store, settings, [notice()])

    report = enqueue(store, settings, [], kinds=("quota", "anomaly"))

    assert report.resolved == 0


def test_resolved_anomaly_notice_resolves(store):
    settings = notify_settings()
    anomaly = notice(kind="anomaly", budget=None, period_start=None, period_end=None)
    enqueue(store, settings, [anomaly], kinds=("anomaly",))

    ended = Notice.from_json({**anomaly.to_json(), "state": "resolved"})
    report = enqueue(store, settings, [ended], kinds=("anomaly",))

    assert report.resolve_rows == 1
    assert enqueue(store, settings, [ended], kinds=("anomaly",)).queued == 0


def test_severity_increase_of_quota_alert(store):
    settings = notify_settings()
    quota = notice(kind="quota", budget=None, period_start=None, severity="warning",
                   overspend=None)
    enqueue(store, settings, [quota], kinds=("quota",))

    report = enqueue(store, settings, [notice(**{**_fields(quota), "severity": "critical"})],
                     kinds=("quota",))

    assert report.updated == 1


def _fields(item: Notice) -> dict:
    return {name: getattr(item, name) for name in Notice.__dataclass_fields__}


def digest_settings(**noise) -> object:
    channels = {"ops": dict(WEBHOOK), "finops": dict(WEBHOOK),
                "pager": {**WEBHOOK, "digest": False}}
    return notify_settings(
        channels=channels,
        routes=[{"name": "all", "channels": ["ops", "pager"]}],
        noise={"digest_below": "warning", **noise},
    )


def test_low_severity_waits_for_digest(store):
    settings = digest_settings()

    report = enqueue(store, settings, [notice(severity="info")])

    assert report.digest_pending == 1
    assert report.triggered == 1
    (row,) = rows(store)
    assert row.channel == "pager"
    assert record(store, channel="ops").digest_pending is True
    assert record(store, channel="pager").digest_pending is False


def test_pending_digest_alert_rising_above_digest_triggers(store):
    settings = digest_settings()
    enqueue(store, settings, [notice(severity="info")])

    report = enqueue(store, settings, [notice(severity="warning")])

    ops_rows = [row for row in rows(store) if row.channel == "ops"]
    assert [row.event for row in ops_rows] == ["trigger"]
    assert report.triggered == 1
    assert report.updated == 1
    assert record(store, channel="ops").digest_pending is False


def test_refired_digest_alert_ignores_earlier_trigger(store):
    settings = digest_settings()
    enqueue(store, settings, [notice(severity="warning")])
    enqueue(store, settings, [], now=NOW + timedelta(hours=1))
    enqueue(store, settings, [notice(severity="info")], now=NOW + timedelta(hours=2))

    report = enqueue(store, settings, [notice(severity="info", probability=0.9)],
                     now=NOW + timedelta(hours=3))

    ops_events = [row.event for row in rows(store) if row.channel == "ops"]
    assert ops_events == ["trigger", "resolve"]
    assert record(store, channel="ops").digest_pending is True
    assert report.updated == 1


def test_digest_only_alert_resolves_without_row(store):
    settings = digest_settings()
    enqueue(store, settings, [notice(severity="info")])
    now = NOW.replace(hour=8)
    assert collect_digests_at(store, settings, now + timedelta(days=1)) == 1

    enqueue(store, settings, [], now=now + timedelta(days=2))

    ops_events = [row.event for row in rows(store) if row.channel == "ops"]
    assert ops_events == ["digest"]
    assert record(store, channel="ops").state == "resolved"


def collect_digests_at(store: Store, settings, now: datetime) -> int:
    with store.transaction() as session:
        return collect_digests(session, settings, now)


def test_digest_waits_for_digest_time_berlin(store):
    # 08:00 in Berlin is 07:00 UTC in November (CET, UTC+1).
    settings = digest_settings(digest_time="08:00", digest_timezone="Europe/Berlin")
    first = notice(alert_id="1" * 32, severity="info", budget="a")
    second = notice(alert_id="2" * 32, severity="info", budget="b")
    pending_at = datetime(2026, 11, 15, 6, 0, tzinfo=UTC)
    enqueue(store, settings, [first, second], now=pending_at, budgets=("a", "b"))

    assert collect_digests_at(store, settings, datetime(2026, 11, 15, 6, 59, tzinfo=UTC)) == 0
    assert collect_digests_at(store, settings, datetime(2026, 11, 15, 7, 0, tzinfo=UTC)) == 1
    assert collect_digests_at(store, settings, datetime(2026, 11, 15, 7, 30, tzinfo=UTC)) == 0

    (digest,) = [row for row in rows(store) if row.event == "digest"]
    assert digest.channel == "ops"
    assert digest.alert_id is None
    assert sorted(item["alert_id"] for item in digest.notices) == ["1" * 32, "2" * 32]
    assert record(store, "1" * 32).digest_pending is False


def test_digest_next_day_after_late_alert(store):
    settings = digest_settings(digest_time="08:00", digest_timezone="Europe/Berlin")
    enqueue(store, settings, [notice(alert_id="1" * 32, severity="info")],
            now=datetime(2026, 11, 15, 6, 0, tzinfo=UTC))
    collect_digests_at(store, settings, datetime(2026, 11, 15, 7, 0, tzinfo=UTC))
    late = notice(alert_id="2" * 32, severity="info", budget="b")
    enqueue(store, settings, [notice(alert_id="1" * 32, severity="info"), late],
            now=datetime(2026, 11, 15, 9, 0, tzinfo=UTC), budgets=("prod-monthly", "b"))

    assert collect_digests_at(store, settings, datetime(2026, 11, 15, 23, 0, tzinfo=UTC)) == 0
    assert collect_digests_at(store, settings, datetime(2026, 11, 16, 7, 0, tzinfo=UTC)) == 1

    digests = [row for row in rows(store) if row.event == "digest"]
    assert [item["alert_id"] for item in digests[-1].notices] == ["2" * 32]


def test_digest_in_a_zone_west_of_utc(store):
    # 08:00 in New York is 13:00 UTC in November (EST, UTC-5); the UTC day has already turned.
    settings = digest_settings(digest_time="08:00", digest_timezone="America/New_York")
    enqueue(store, settings, [notice(severity="info")],
            now=datetime(2026, 11, 16, 2, 0, tzinfo=UTC))

    assert collect_digests_at(store, settings, datetime(2026, 11, 16, 12, 59, tzinfo=UTC)) == 0
    assert collect_digests_at(store, settings, datetime(2026, 11, 16, 13, 0, tzinfo=UTC)) == 1


def test_digest_skips_snoozed_alerts(store):
    settings = digest_settings()
    enqueue(store, settings, [notice(severity="info")], now=NOW.replace(hour=7))
    snooze(store, hours=48, at=NOW.replace(hour=7))

    assert collect_digests_at(store, settings, NOW.replace(hour=9)) == 0
    assert record(store, channel="ops").digest_pending is True


def test_digest_most_severe_first(store):
    settings = digest_settings(digest_below="critical")
    info = notice(alert_id="1" * 32, severity="info", budget="a")
    warning = notice(alert_id="2" * 32, severity="warning", budget="b")
    enqueue(store, settings, [info, warning], now=NOW.replace(hour=7), budgets=("a", "b"))

    assert collect_digests_at(store, settings, NOW.replace(hour=9)) == 1

    (digest,) = [row for row in rows(store) if row.event == "digest"]
    assert [item["severity"] for item in digest.notices] == ["warning", "info"]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # The day before daylight saving time ends in New York: 08:00 EDT is 12:00 UTC.
        (datetime(2026, 10, 31, 12, 0, tzinfo=UTC), datetime(2026, 10, 31, 12, 0, tzinfo=UTC)),
        (datetime(2026, 10, 31, 11, 59, tzinfo=UTC), datetime(2026, 10, 30, 12, 0, tzinfo=UTC)),
        # The day it ends: 08:00 EST is 13:00 UTC.
        (datetime(2026, 11, 1, 12, 30, tzinfo=UTC), datetime(2026, 10, 31, 12, 0, tzinfo=UTC)),
        (datetime(2026, 11, 1, 13, 0, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
    ],
)
def test_latest_digest_time_across_dst(now, expected):
    noise = NoiseSettings(digest_time="08:00", digest_timezone="America/New_York")

    assert latest_digest_time(now, noise) == expected


def test_latest_digest_time_east_of_utc():
    noise = NoiseSettings(digest_time="08:00", digest_timezone="Asia/Tokyo")

    # 08:00 in Tokyo is 23:00 UTC on the previous day.
    now = datetime(2026, 11, 15, 22, 0, tzinfo=UTC)

    assert latest_digest_time(now, noise) == datetime(2026, 11, 14, 23, 0, tzinfo=UTC)

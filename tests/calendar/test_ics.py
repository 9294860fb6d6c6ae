"""Reading iCalendar files of scheduled jobs: recurrences, time zones, prices and errors."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from costwarden.errors import CalendarFileError, InputError
from costwarden.sources.calendar import load_calendar

NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
JANUARY = datetime(2027, 1, 1, tzinfo=UTC)

WEEKLY = """
BEGIN:VEVENT
UID:train-1
SUMMARY:Weekly training
DTSTART;TZID=Europe/Berlin:20261107T220000
DURATION:PT6H
RRULE:FREQ=WEEKLY;BYDAY=SA;COUNT=5
EXDATE;TZID=Europe/Berlin:20261114T220000
RDATE;TZID=Europe/Berlin:20261125T100000
X-COSTWARDEN-COST:300.00
X-COSTWARDEN-CURRENCY:usd
X-COSTWARDEN-CLUSTER:ml-training-eks
X-COSTWARDEN-NAMESPACE:training
X-COSTWARDEN-LABELS:team=ml,env=prod
END:VEVENT
"""


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_rule_with_exdate_and_rdate(write_ics):
    calendar = load_calendar(write_ics(WEEKLY))

    occurrences = calendar.occurrences(NOVEMBER, JANUARY)

    assert [o.start for o in occurrences] == [
        _utc(2026, 11, 7, 21),
        _utc(2026, 11, 21, 21),
        _utc(2026, 11, 25, 9),
        _utc(2026, 11, 28, 21),
        _utc(2026, 12, 5, 21),
    ]
    assert all(o.end - o.start == timedelta(hours=6) for o in occurrences)
    job = occurrences[0].job
    assert job.cost == Decimal("300.00")
    assert job.currency == "USD"
    assert job.scope.cluster == "ml-training-eks"
    assert job.scope.namespace == "training"
    assert job.scope.labels == {"team": "ml", "env": "prod"}
    assert job.in_history is False
    assert "train-1" in job.origin


def test_time_zone_follows_daylight_saving(write_ics):
    calendar = load_calendar(write_ics("""
        BEGIN:VEVENT
        UID:nightly
        SUMMARY:Nightly batch
        DTSTART;TZID=Europe/Berlin:20261017T220000
        DTEND;TZID=Europe/Berlin:20261017T230000
        RRULE:FREQ=WEEKLY;COUNT=3
        X-COSTWARDEN-COST:10
        X-COSTWARDEN-CURRENCY:EUR
        X-COSTWARDEN-PROJECT:data-science
        END:VEVENT
    """))

    starts = [o.start for o in calendar.occurrences(_utc(2026, 10, 1), NOVEMBER)]

    # Berlin leaves summer time (UTC+2) on 25 October, so 22:00 local moves from 20:00 to 21:00 UTC.
    assert starts == [_utc(2026, 10, 17, 20), _utc(2026, 10, 24, 20), _utc(2026, 10, 31, 21)]


def test_moved_occurrence_inherits_cost_fields(write_ics):
    calendar = load_calendar(write_ics(WEEKLY + """
        BEGIN:VEVENT
        UID:train-1
        RECURRENCE-ID;TZID=Europe/Berlin:20261128T220000
        SUMMARY:Weekly training (long run)
        DTSTART;TZID=Europe/Berlin:20261128T200000
        DURATION:PT12H
        X-COSTWARDEN-COST:600.00
        END:VEVENT
    """))

    occurrences = calendar.occurrences(_utc(2026, 11, 28), _utc(2026, 11, 30))

    assert len(occurrences) == 1
    moved = occurrences[0]
    assert moved.start == _utc(2026, 11, 28, 19)
    assert moved.end == _utc(2026, 11, 29, 7)
    assert moved.job.cost == Decimal("600.00")
    assert moved.job.currency == "USD"
    assert moved.job.scope.cluster == "ml-training-eks"
    assert moved.job.name == "Weekly training (long run)"


def test_node_hours_priced_from_catalogue(write_ics):
    calendar = load_calendar(write_ics("""
        BEGIN:VEVENT
        UID:gpu
        SUMMARY:GPU run
        DTSTART:20261121T070000Z
        DURATION:PT12H
        X-COSTWARDEN-NODE-HOURS:192
        X-COSTWARDEN-INSTANCE-TYPE:g5.2xlarge
        X-COSTWARDEN-CLOUD:eks
        X-COSTWARDEN-REGION:us-east-1
        X-COSTWARDEN-CLUSTER:ml-training-eks
        END:VEVENT
    """))

    job = calendar.jobs[0]

    # The packaged AWS list prices g5.2xlarge in us-east-1 at 1.212 USD an hour.
    assert job.cost == Decimal("192") * Decimal("1.212")
    assert job.currency == "USD"
    assert "g5.2xlarge" in job.pricing
    assert "1.212" in job.pricing


def test_all_day_floating_and_cancelled_events(write_ics):
    calendar = load_calendar(write_ics("""
        BEGIN:VEVENT
        UID:allday
        SUMMARY:Migration weekend
        DTSTART;VALUE=DATE:20261120
        DTEND;VALUE=DATE:20261122
        X-COSTWARDEN-COST:100
        X-COSTWARDEN-CURRENCY:USD
        X-COSTWARDEN-CLUSTER:c1
        END:VEVENT
        BEGIN:VEVENT
        UID:floating
        SUMMARY:Floating
        DTSTART:20261123T100000
        DURATION:PT1H
        X-COSTWARDEN-COST:5
        X-COSTWARDEN-CURRENCY:USD
        X-COSTWARDEN-CLUSTER:c1
        X-COSTWARDEN-IN-HISTORY:TRUE
        END:VEVENT
        BEGIN:VEVENT
        UID:cancelled
        SUMMARY:Called off
        STATUS:CANCELLED
        DTSTART:20261124T100000Z
        DURATION:PT1H
        X-COSTWARDEN-COST:5
        X-COSTWARDEN-CURRENCY:USD
        X-COSTWARDEN-CLUSTER:c1
        END:VEVENT
    """))

    occurrences = calendar.occurrences(NOVEMBER, JANUARY)

    assert [o.job.uid for o in occurrences] == ["allday", "floating"]
    assert (occurrences[0].start, occurrences[0].end) == (_utc(2026, 11, 20), _utc(2026, 11, 22))
    assert occurrences[1].start == _utc(2026, 11, 23, 10)
    assert occurrences[1].job.in_history is True


def test_range_keeps_occurrences_that_overlap(write_ics):
    calendar = load_calendar(write_ics("""
        BEGIN:VEVENT
        UID:overnight
        SUMMARY:Overnight
        DTSTART:20261115T180000Z
        DTEND:20261116T060000Z
        X-COSTWARDEN-COST:120
        X-COSTWARDEN-CURRENCY:USD
        X-COSTWARDEN-CLUSTER:c1
        END:VEVENT
    """))

    assert len(calendar.occurrences(_utc(2026, 11, 16), _utc(2026, 11, 17))) == 1
    assert calendar.occurrences(_utc(2026, 11, 16, 6), _utc(2026, 11, 17)) == []
    assert calendar.occurrences(_utc(2026, 11, 14), _utc(2026, 11, 15, 18)) == []


def _error(write_ics, event: str) -> CalendarFileError:
    with pytest.raises(CalendarFileError) as caught:
        load_calendar(write_ics(event))
    return caught.value


def _event(*lines: str, uid: str = "job-1") -> str:
    head = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "SUMMARY:Nightly ETL",
        "DTSTART:20261121T070000Z",
        "DURATION:PT2H",
    ]
    return "\n".join(head + list(lines) + ["END:VEVENT"])


SCOPE = "X-COSTWARDEN-CLUSTER:c1"
COST = "X-COSTWARDEN-COST:10\nX-COSTWARDEN-CURRENCY:USD"


@pytest.mark.parametrize(
    ("lines", "field", "value", "hint"),
    [
        (("X-COSTWARDEN-COST:ten", "X-COSTWARDEN-CURRENCY:USD", SCOPE),
         "X-COSTWARDEN-COST", "ten", "decimal"),
        (("X-COSTWARDEN-COST:-5", "X-COSTWARDEN-CURRENCY:USD", SCOPE),
         "X-COSTWARDEN-COST", "-5", "zero or more"),
        (("X-COSTWARDEN-COST:10", "X-COSTWARDEN-CURRENCY:DOLLARS", SCOPE),
         "X-COSTWARDEN-CURRENCY", "DOLLARS", "ISO 4217"),
        ((COST, SCOPE, "X-COSTWARDEN-COSTS:10"), "X-COSTWARDEN-COSTS", None, "known properties"),
        ((COST, SCOPE, "X-COSTWARDEN-IN-HISTORY:maybe"), "X-COSTWARDEN-IN-HISTORY", "maybe",
         "TRUE"),
        ((COST, SCOPE, "X-COSTWARDEN-LABELS:team"), "X-COSTWARDEN-LABELS", "team", "key=value"),
        ((COST, "X-COSTWARDEN-PROJECT:p", "X-COSTWARDEN-NAMESPACE:etl"), "X-COSTWARDEN-NAMESPACE",
         "etl", "needs X-COSTWARDEN-CLUSTER"),
        ((COST, SCOPE, "X-COSTWARDEN-REGION:us-east-1"), "X-COSTWARDEN-REGION", "us-east-1",
         "only used with X-COSTWARDEN-NODE-HOURS"),
        (("X-COSTWARDEN-NODE-HOURS:10", "X-COSTWARDEN-INSTANCE-TYPE:g9.huge",
          "X-COSTWARDEN-CLOUD:eks", "X-COSTWARDEN-REGION:us-east-1", SCOPE),
         "X-COSTWARDEN-INSTANCE-TYPE", "g9.huge", "g9.huge"),
        (("X-COSTWARDEN-NODE-HOURS:10", "X-COSTWARDEN-INSTANCE-TYPE:m5.large",
          "X-COSTWARDEN-CLOUD:eks", "X-COSTWARDEN-REGION:mars-1", SCOPE),
         "X-COSTWARDEN-REGION", "mars-1", "us-east-1"),
        (("X-COSTWARDEN-NODE-HOURS:10", "X-COSTWARDEN-INSTANCE-TYPE:m5.large",
          "X-COSTWARDEN-CLOUD:eks", "X-COSTWARDEN-REGION:us-east-1", "X-COSTWARDEN-CURRENCY:EUR",
          SCOPE),
         "X-COSTWARDEN-CURRENCY", "EUR", "priced in USD"),
        ((COST, SCOPE, "RRULE:FREQ=WEEKLY;BYDAY=XX"), "RRULE", "FREQ=WEEKLY;BYDAY=XX", "weekday"),
    ],
)
def test_invalid_field_names_event_field_value(write_ics, lines, field, value, hint):
    error = _error(write_ics, _event(*lines))

    message = str(error)
    assert isinstance(error, InputError)
    assert error.event == "'job-1' ('Nightly ETL')"
    assert error.field == field
    assert error.value == value
    assert hint in message
    assert message.startswith(error.path + ", event 'job-1' ('Nightly ETL'), field " + field)


@pytest.mark.parametrize(
    ("lines", "hint"),
    [
        ((SCOPE,), "missing cost; add X-COSTWARDEN-COST with X-COSTWARDEN-CURRENCY"),
        (("X-COSTWARDEN-COST:10", SCOPE), "needs a currency"),
        ((COST,), "missing scope; add X-COSTWARDEN-CLUSTER"),
        ((COST, SCOPE, "X-COSTWARDEN-NODE-HOURS:3"), "keep either the cost"),
        (("X-COSTWARDEN-NODE-HOURS:3", "X-COSTWARDEN-CLOUD:eks", SCOPE),
         "needs X-COSTWARDEN-INSTANCE-TYPE"),
        ((COST, SCOPE, "DTEND:20261122T070000Z"), "both DTEND and DURATION"),
    ],
)
def test_missing_or_conflicting_fields_explain_fix(write_ics, lines, hint):
    error = _error(write_ics, _event(*lines))

    assert hint in str(error)
    assert "'job-1'" in str(error)


def test_event_ending_before_start_is_rejected(write_ics):
    error = _error(write_ics, """
        BEGIN:VEVENT
        UID:backwards
        DTSTART:20261121T070000Z
        DTEND:20261121T060000Z
        X-COSTWARDEN-COST:10
        X-COSTWARDEN-CURRENCY:USD
        X-COSTWARDEN-CLUSTER:c1
        END:VEVENT
    """)

    assert error.event == "'backwards'"
    assert error.field == "DTEND"
    assert "before it starts" in str(error)


def test_duplicate_and_missing_uid_are_rejected(write_ics):
    duplicate = _error(write_ics, _event(COST, SCOPE) + "\n" + _event(COST, SCOPE))
    missing = _error(write_ics, _event(COST, SCOPE).replace("UID:job-1\n", ""))

    assert "duplicate UID" in str(duplicate)
    assert duplicate.value == "job-1"
    assert "missing UID" in str(missing)
    assert missing.event == "#1 ('Nightly ETL')"


def test_broken_dtstart_names_value(write_ics):
    error = _error(write_ics, _event(COST, SCOPE).replace("DTSTART:20261121T070000Z",
                                                          "DTSTART:2026-11-21"))

    assert error.field == "DTSTART"
    assert error.value == "2026-11-21"


def test_unreadable_files_raise_calendar_error(tmp_path):
    missing = tmp_path / "absent.ics"
    garbage = tmp_path / "garbage.ics"
    garbage.write_text("this is not a calendar\n")

    with pytest.raises(CalendarFileError, match="file not found; check --calendar"):
        load_calendar(missing)
    with pytest.raises(CalendarFileError, match="not a valid iCalendar file"):
        load_calendar(garbage)


def test_date_start_with_datetime_end_rejected(write_ics):
    error = _error(write_ics, """
        BEGIN:VEVENT
        UID:mixed
        DTSTART;VALUE=DATE:20261120
        DTEND:20261121T100000Z
        X-COSTWARDEN-COST:10
        X-COSTWARDEN-CURRENCY:USD
        X-COSTWARDEN-CLUSTER:c1
        END:VEVENT
    """)

    assert error.field == "DTEND"
    assert "same type" in str(error)


def test_unknown_tzid_is_rejected(tmp_path):
    path = tmp_path / "mars.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:x1\r\n"
        "SUMMARY:Mars job\r\nDTSTART;TZID=Mars/Olympus:20261120T000000\r\nDURATION:PT2H\r\n"
        "X-COSTWARDEN-COST:100\r\nX-COSTWARDEN-CURRENCY:USD\r\nX-COSTWARDEN-CLUSTER:c1\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )

    with pytest.raises(CalendarFileError, match="unknown time zone") as caught:
        load_calendar(path)

    assert "Mars/Olympus" in str(caught.value)

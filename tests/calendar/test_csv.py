"""Reading CSV calendars of scheduled jobs: rules, durations, time zones and line-level errors."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from costwarden.errors import CalendarFileError
from costwarden.sources.calendar import load_calendar

NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
JANUARY = datetime(2027, 1, 1, tzinfo=UTC)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_rows_with_rules_durations_and_zones(write_csv):
    path = write_csv("""
        name,start,end,duration,timezone,rrule,exdate,cost,currency,node_hours,instance_type,cloud,region,cluster,project,namespace,labels,in_history
        Weekly training,2026-11-07T22:00,,PT6H,Europe/Berlin,FREQ=WEEKLY;BYDAY=SA;COUNT=4,2026-11-14T22:00,,,96,g5.2xlarge,eks,us-east-1,ml-training-eks,,training,"team=ml,env=prod",
        Load test,2026-11-19T14:00:00Z,2026-11-19T18:00:00Z,,,,,450.00,EUR,,,,,,payments,,,
        Backfill,2026-11-20,2026-11-22,,,,,80,usd,,,,,etl-cluster,,,,true
    """)  # noqa: E501 - one CSV row per job reads best unwrapped

    calendar = load_calendar(path)
    occurrences = calendar.occurrences(NOVEMBER, JANUARY)

    assert [(o.job.name, o.start) for o in occurrences] == [
        ("Weekly training", _utc(2026, 11, 7, 21)),
        ("Load test", _utc(2026, 11, 19, 14)),
        ("Backfill", _utc(2026, 11, 20)),
        ("Weekly training", _utc(2026, 11, 21, 21)),
        ("Weekly training", _utc(2026, 11, 28, 21)),
    ]
    training, load_test, backfill = calendar.jobs
    assert training.cost == Decimal(96) * Decimal("1.212")
    assert training.scope.labels == {"team": "ml", "env": "prod"}
    assert training.origin.endswith("jobs.csv, line 2")
    assert occurrences[0].end - occurrences[0].start == timedelta(hours=6)
    assert (load_test.cost, load_test.currency, load_test.scope.project) == (
        Decimal("450.00"), "EUR", "payments"
    )
    assert occurrences[2].end == _utc(2026, 11, 22)
    assert backfill.in_history is True
    assert backfill.currency == "USD"


def test_offset_start_converted_to_zone(write_csv):
    path = write_csv("""
        name,start,duration,timezone,rrule,cost,currency,cluster
        Nightly,2026-10-17T20:00:00Z,PT1H,Europe/Berlin,FREQ=WEEKLY;COUNT=3,1,USD,c1
    """)

    starts = [o.start for o in load_calendar(path).occurrences(_utc(2026, 10, 1), NOVEMBER)]

    # 20:00 UTC is 22:00 in Berlin; the rule keeps 22:00 local after summer time ends on 25 October.
    assert starts == [_utc(2026, 10, 17, 20), _utc(2026, 10, 24, 20), _utc(2026, 10, 31, 21)]


def test_uid_column_and_blank_lines(write_csv):
    path = write_csv("""
        uid,name,start,cost,currency,cluster

        etl-1,ETL,2026-11-20T01:00:00Z,5,USD,c1
        etl-2,ETL,2026-11-21T01:00:00Z,5,USD,c1
    """)

    calendar = load_calendar(path)

    assert [job.uid for job in calendar.jobs] == ["etl-1", "etl-2"]
    assert calendar.jobs[0].origin.endswith("line 3")
    occurrence = calendar.occurrences(NOVEMBER, JANUARY)[0]
    assert occurrence.start == occurrence.end
    assert occurrence.daily_cost() == {date(2026, 11, 20): Decimal(5)}


HEADER = (
    "name,start,end,duration,timezone,rrule,exdate,cost,currency,node_hours,instance_type,cloud,"
    "region,cluster,namespace"
)


@pytest.mark.parametrize(
    ("row", "field", "value", "hint"),
    [
        ("ETL,2026-11-20T01:00Z,,,,,,ten,USD,,,,,c1,", "cost", "ten", "decimal"),
        ("ETL,20/11/2026,,,,,,5,USD,,,,,c1,", "start", "20/11/2026", "ISO 8601"),
        ("ETL,2026-11-20T01:00Z,2026-11-19T01:00Z,,,,,5,USD,,,,,c1,", "end",
         "2026-11-19T01:00Z", "before the start"),
        ("ETL,2026-11-20T01:00Z,2026-11-20,,,,,5,USD,,,,,c1,", "end", "2026-11-20",
         "must be a date-time"),
        ("ETL,2026-11-20T01:00Z,,6h,,,,5,USD,,,,,c1,", "duration", "6h", "PT6H"),
        ("ETL,2026-11-20,,PT6H,,,,5,USD,,,,,c1,", "duration", "PT6H", "whole days"),
        ("ETL,2026-11-20T01:00Z,,,Mars/Olympus,,,5,USD,,,,,c1,", "timezone", "Mars/Olympus",
         "IANA"),
        ("ETL,2026-11-20T01:00Z,,,,FREQ=FORTNIGHTLY,,5,USD,,,,,c1,", "rrule", "FREQ=FORTNIGHTLY",
         "frequency"),
        ("ETL,2026-11-20T01:00Z,,,,BYDAY=SA,,5,USD,,,,,c1,", "rrule", "BYDAY=SA", "no FREQ"),
        ("ETL,2026-11-20T01:00Z,,,,FREQ=DAILY,2026-11-21,5,USD,,,,,c1,", "exdate", "2026-11-21",
         "must be a date-time"),
        ("ETL,2026-11-20T01:00Z,,,,,,5,USD,,,,,,etl", None, None, "missing scope; add cluster"),
        ("ETL,2026-11-20T01:00Z,,,,,,,,4,m5.large,eks,mars-1,c1,", "region", "mars-1",
         "us-east-1"),
        ("ETL,2026-11-20T01:00Z,,,,,,,,4,m5.large,,us-east-1,c1,", None, None, "needs cloud"),
        ("ETL,2026-11-20T01:00Z,,PT1H,,,,,,,,,,c1,", None, None,
         "missing cost; add cost with currency"),
        ("ETL,2026-11-20T01:00Z,,PT1H,,,,5,USD,,,,", None, None, "header has 15 columns"),
    ],
)
def test_invalid_row_names_line_field_value(write_csv, row, field, value, hint):
    path = write_csv(f"{HEADER}\nfine,2026-11-20T01:00Z,,,,,,5,USD,,,,,c1,\n{row}\n")

    with pytest.raises(CalendarFileError) as caught:
        load_calendar(path)

    error = caught.value
    assert error.path == str(path)
    assert error.line == 3
    assert error.field == field
    assert error.value == value
    assert hint in str(error)
    assert str(error).startswith(f"{path}, line 3")


def test_duplicate_name_points_at_first_line(write_csv):
    path = write_csv("""
        name,start,cost,currency,cluster
        ETL,2026-11-20T01:00Z,5,USD,c1
        ETL,2026-11-21T01:00Z,5,USD,c1
    """)

    with pytest.raises(CalendarFileError) as caught:
        load_calendar(path)

    assert caught.value.line == 3
    assert caught.value.field == "uid"
    assert "first used on" in str(caught.value)
    assert "line 2" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("", "empty file"),
        ("name,start,cost,colour\n", "unknown column"),
        ("name,cost,currency\n", "missing column 'start'"),
        ("name,start,currency\n", "cost or a node_hours column"),
    ],
)
def test_bad_header_is_line_one(write_csv, text, hint):
    path = write_csv(text)

    with pytest.raises(CalendarFileError, match=hint) as caught:
        load_calendar(path)

    if text:
        assert caught.value.line == 1


def test_unknown_column_is_named(write_csv):
    path = write_csv("name,start,cost,colour\n")

    with pytest.raises(CalendarFileError) as caught:
        load_calendar(path)

    assert caught.value.field == "colour"
    assert "node_hours" in str(caught.value)


def test_repeated_column_is_named(write_csv):
    path = write_csv("name,start,cost,currency,cluster,cost\n")

    with pytest.raises(CalendarFileError, match="named twice") as caught:
        load_calendar(path)

    assert caught.value.line == 1
    assert caught.value.field == "cost"


def test_unbounded_fine_rule_is_rejected(write_csv):
    path = write_csv("""
        name,start,duration,timezone,rrule,cost,currency,cluster
        Poller,2026-11-01T00:00:00Z,PT1S,,FREQ=SECONDLY,0.01,USD,c1
    """)

    calendar = load_calendar(path)

    with pytest.raises(CalendarFileError, match="more than 5000 job occurrences"):
        calendar.occurrences(NOVEMBER, JANUARY)


def test_long_job_started_before_window_counts(write_csv):
    path = write_csv("""
        name,start,end,duration,timezone,rrule,cost,currency,cluster
        Migration,2026-10-20T00:00:00Z,2026-11-10T00:00:00Z,,,,210,USD,c1
    """)

    occurrences = load_calendar(path).occurrences(NOVEMBER, JANUARY)

    assert [o.job.name for o in occurrences] == ["Migration"]

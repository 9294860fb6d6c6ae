from datetime import date

import pytest

from costwarden.domain.budget import Period, PeriodWindow


@pytest.mark.parametrize(
    ("kind", "day", "start", "end"),
    [
        ("weekly", date(2026, 12, 4), date(2026, 11, 30), date(2026, 12, 7)),
        ("monthly", date(2026, 2, 14), date(2026, 2, 1), date(2026, 3, 1)),
        ("monthly", date(2028, 2, 29), date(2028, 2, 1), date(2028, 3, 1)),
        ("quarterly", date(2026, 11, 15), date(2026, 10, 1), date(2027, 1, 1)),
        ("quarterly", date(2026, 1, 1), date(2026, 1, 1), date(2026, 4, 1)),
        ("yearly", date(2026, 7, 1), date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_calendar_periods_in_utc(kind, day, start, end):
    assert Period(kind).window_for(day) == PeriodWindow(start, end)


def test_custom_period_and_previous():
    period = Period("custom", start=date(2026, 10, 15), end=date(2026, 11, 14))
    window = period.window_for(date(2026, 11, 1))

    assert window == PeriodWindow(date(2026, 10, 15), date(2026, 11, 15))
    assert window.days == 31
    assert period.previous(window) == PeriodWindow(date(2026, 9, 14), date(2026, 10, 15))


def test_previous_month_has_its_own_length():
    period = Period("monthly")
    march = period.window_for(date(2026, 3, 10))

    assert period.previous(march) == PeriodWindow(date(2026, 2, 1), date(2026, 3, 1))


@pytest.mark.parametrize(
    ("timezone", "day", "expected_start"),
    [
        # Midday UTC of Nov 30 is already Dec 1 in Tokyo (+9 h), still Nov 30 in New York.
        ("Asia/Tokyo", date(2026, 11, 30), date(2026, 11, 1)),
        ("Asia/Tokyo", date(2026, 12, 1), date(2026, 12, 1)),
        ("America/New_York", date(2026, 12, 1), date(2026, 12, 1)),
        # Midday UTC of Nov 30 is 02:00 on Dec 1 in Kiritimati (+14 h), so that UTC day opens December.
        ("Pacific/Kiritimati", date(2026, 11, 30), date(2026, 11, 30)),
    ],
)
def test_time_zone_maps_utc_days_by_midday(timezone, day, expected_start):
    window = Period("monthly", timezone).window_for(day)

    assert window.start == expected_start
    assert day in window

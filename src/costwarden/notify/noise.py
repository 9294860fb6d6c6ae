"""Noise control: which notices lead, what counts as a material change, and digest times.

These are pure decisions; ``notify.outbox`` applies them to the stored notification records.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from costwarden.config import NoiseSettings
from costwarden.notify.notice import SEVERITY_RANK, Notice
from costwarden.store.tables import NotificationRecord

TOLERANCE = 1e-9
"""Slack for float comparisons, so a change of exactly the configured size counts."""


def split_leading(notices: Sequence[Notice]) -> tuple[list[Notice], list[Notice]]:
    """Split notices into those to notify and those covered by a more severe one.

    A budget whose status crosses several thresholds in one period gets one notice: the most
    severe, the first of equal ones. The others are covered, so they stay firing quietly.
    Notices of other kinds all lead.
    """
    best: dict[tuple[str, str], Notice] = {}
    for notice in notices:
        if notice.kind != "budget" or notice.budget is None:
            continue
        key = (notice.budget, notice.period_key)
        current = best.get(key)
        if current is None or SEVERITY_RANK[notice.severity] > SEVERITY_RANK[current.severity]:
            best[key] = notice

    leading: list[Notice] = []
    covered: list[Notice] = []
    for notice in notices:
        key = (notice.budget or "", notice.period_key)
        if notice.kind == "budget" and notice.budget is not None and best[key] is not notice:
            covered.append(notice)
        else:
            leading.append(notice)
    return leading, covered


def goes_to_digest(notice: Notice, noise: NoiseSettings, channel_takes_digest: bool) -> bool:
    """Return True when the notice waits for the channel's daily digest instead of a message."""
    if noise.digest_below is None or not channel_takes_digest:
        return False
    return SEVERITY_RANK[notice.severity] < SEVERITY_RANK[noise.digest_below]


def material_change(record: NotificationRecord, notice: Notice, noise: NoiseSettings) -> bool:
    """Return True when the notice differs enough from what was last sent to the channel.

    A change is material when the severity rises, the probability moves by at least
    ``probability_change``, the breach date moves by at least ``breach_date_shift_days``, or the
    overspend changes by at least ``overspend_change`` of its last value. A value that appears
    or disappears counts as a change.
    """
    if SEVERITY_RANK[notice.severity] > SEVERITY_RANK.get(record.severity, 0):
        return True
    if _moved(record.probability, notice.probability, noise.probability_change):
        return True
    if _date_moved(record.breach_date, notice.breach_date, noise.breach_date_shift_days):
        return True
    return _relative_moved(record.overspend, notice.overspend, noise.overspend_change)


def _moved(old: float | None, new: float | None, threshold: float) -> bool:
    if old is None or new is None:
        return (old is None) != (new is None)
    change = abs(new - old)
    return change > 0 and change >= threshold - TOLERANCE


def _date_moved(old: date | None, new: date | None, days: int) -> bool:
    if old is None or new is None:
        return (old is None) != (new is None)
    shift = abs((new - old).days)
    return shift > 0 and shift >= days


def _relative_moved(old: float | None, new: float | None, threshold: float) -> bool:
    if old is None or new is None:
        return (old is None) != (new is None)
    change = abs(new - old)
    if change == 0:
        return False
    if old == 0:
        return True
    return change / abs(old) >= threshold - TOLERANCE


def latest_digest_time(now: datetime, noise: NoiseSettings) -> datetime:
    """Return the most recent digest time at or before ``now``, in UTC.

    The digest time is a local time of day in ``digest_timezone``, so it follows daylight saving
    time. On a day where that local time does not exist, zoneinfo maps it to the later offset.
    """
    zone = ZoneInfo(noise.digest_timezone)
    hours, minutes = (int(part) for part in noise.digest_time.split(":"))
    local_day = now.astimezone(zone).date()

    candidate = _at(local_day, time(hours, minutes), zone)
    if candidate > now.astimezone(UTC):
        candidate = _at(local_day - timedelta(days=1), time(hours, minutes), zone)
    return candidate


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)

"""Read calendars of scheduled jobs from iCalendar (.ics) and CSV files.

A scheduled job is known work, such as a weekly GPU training run, whose cost the history cannot
show yet. Each iCalendar VEVENT or CSV row is one job: a start, an end or duration, an optional
recurrence rule, a cost per occurrence and the scope the job runs in.

iCalendar events use the standard properties (UID, SUMMARY, DTSTART, DTEND or DURATION, RRULE,
RDATE, EXDATE, RECURRENCE-ID, STATUS) and these costwarden properties, one value each:

- ``X-COSTWARDEN-COST`` with ``X-COSTWARDEN-CURRENCY``: the cost of one occurrence.
- Or ``X-COSTWARDEN-NODE-HOURS`` with ``-INSTANCE-TYPE``, ``-CLOUD``, ``-REGION`` and optionally
  ``-CAPACITY-TYPE`` (``on-demand`` or ``spot``): the node-hours of one occurrence. They are
  priced in US dollars from the packaged price catalogue.
- ``X-COSTWARDEN-CLUSTER`` (name or uid) or ``X-COSTWARDEN-PROJECT`` (name or uid), both allowed;
  ``X-COSTWARDEN-NAMESPACE`` (needs a cluster); ``X-COSTWARDEN-LABELS`` (``key=value,...``).
- ``X-COSTWARDEN-IN-HISTORY:TRUE`` for a job the cost history already contains: its occurrences
  are listed but not added to forecasts.

A CSV file has a header row. Its columns are ``name``, ``start``, ``end`` or ``duration``, and the
optional ``uid``, ``timezone``, ``rrule`` and ``exdate``, plus one column per costwarden property,
named in lowercase with underscores (``cost``, ``currency``, ``node_hours``, ``instance_type``,
``cloud``, ``region``, ``capacity_type``, ``cluster``, ``project``, ``namespace``, ``labels``,
``in_history``).

Times with a time zone (TZID, an offset or ``Z``) keep it, so a recurrence follows local wall-clock
time across daylight-saving changes. Floating times (no zone) are read as UTC. An all-day event
covers whole UTC days. A CANCELLED event or occurrence adds nothing.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import pycountry
import recurring_ical_events
from recurring_ical_events.errors import InvalidCalendar as RecurrenceError

from costwarden.domain.schedule import JobScope, Occurrence, ScheduledJob
from costwarden.errors import CalendarFileError, PriceNotFoundError
from costwarden.sources.prices import CURRENCY as PRICE_CURRENCY
from costwarden.sources.prices import PriceCatalog, provider_of

logger = logging.getLogger(__name__)

PROPERTY_PREFIX = "X-COSTWARDEN-"
JOB_FIELDS = (
    "cost",
    "currency",
    "node_hours",
    "instance_type",
    "cloud",
    "region",
    "capacity_type",
    "cluster",
    "project",
    "namespace",
    "labels",
    "in_history",
)
"""The costwarden fields of a job. ``X-COSTWARDEN-NODE-HOURS`` in iCalendar is ``node_hours``."""

CSV_TIMING_COLUMNS = ("uid", "name", "start", "end", "duration", "timezone", "rrule", "exdate")
CSV_COLUMNS = CSV_TIMING_COLUMNS + JOB_FIELDS
ICS_SUFFIXES = (".ics", ".ical", ".icalendar")

MAX_AMOUNT = 10**12
"""Largest cost or node-hours of one job; larger values are typing errors and overflow cents."""

MAX_OCCURRENCES = 5000
"""Occurrences one forecast window may expand to; more means a rule such as FREQ=SECONDLY."""

OCCURRENCE_LOOKBACK = timedelta(days=35)
"""How far before a window occurrences are expanded, so that a long job already running counts."""

_NODE_FIELDS = ("instance_type", "cloud", "region", "capacity_type")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
_LABEL_KEY = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[-A-Za-z0-9_.]*$")


@dataclass(frozen=True, slots=True)
class _Where:
    """The place in a calendar file that a value comes from, used in messages and origins."""

    path: str
    line: int | None = None
    event: str | None = None

    def field_name(self, name: str) -> str:
        """Return the iCalendar property or the CSV column that contains a field."""
        if self.event is not None and name in JOB_FIELDS:
            return PROPERTY_PREFIX + name.upper().replace("_", "-")
        if self.event is not None:
            return name.upper()
        return name.lower()

    def error(
        self, message: str, name: str | None = None, value: object = None
    ) -> CalendarFileError:
        return CalendarFileError(
            self.path,
            message,
            line=self.line,
            event=self.event,
            field=None if name is None else self.field_name(name),
            value=value,
        )

    def describe(self) -> str:
        if self.line is not None:
            return f"{self.path}, line {self.line}"
        return f"{self.path}, event {self.event}"


@dataclass(eq=False)
class Calendar:
    """The scheduled jobs of one calendar file, and the recurrence data to expand them."""

    path: str
    jobs: tuple[ScheduledJob, ...]
    _ical: icalendar.Calendar
    _masters: dict[str, ScheduledJob]
    _overrides: dict[tuple[str, datetime], ScheduledJob]
    _reported: set[object] = field(default_factory=set)

    def occurrences(self, start: datetime, end: datetime) -> list[Occurrence]:
        """Return the occurrences that overlap [start, end), sorted by start.

        A zero-length occurrence counts when it starts inside the range.
        """
        found = []
        for component in self._between(start, end):
            if str(component.get("STATUS", "")).upper() == "CANCELLED":
                continue
            begin, finish = _to_utc(component.start), _to_utc(component.end)
            if begin >= end or (finish <= start and not (finish == begin >= start)):
                continue
            found.append(Occurrence(self._job_for(component), begin, finish))
        found.sort(key=lambda occurrence: (occurrence.start, occurrence.job.uid))
        return found

    def _between(self, start: datetime, end: datetime) -> list[Any]:
        """Expand recurrences in [start, end), refusing rules that yield too many occurrences.

        ``after`` yields occurrences in time order, so a rule such as FREQ=SECONDLY with no end
        is stopped after ``MAX_OCCURRENCES`` instead of expanding for minutes.
        """
        components = []
        for component in recurring_ical_events.of(self._ical).after(start - OCCURRENCE_LOOKBACK):
            if _to_utc(component.start) >= end:
                break
            components.append(component)
            if len(components) > MAX_OCCURRENCES:
                raise CalendarFileError(
                    self.path,
                    f"more than {MAX_OCCURRENCES} job occurrences between {start:%Y-%m-%d} and "
                    f"{end:%Y-%m-%d}; give the recurring events a coarser FREQ, a COUNT "
                    "or an UNTIL",
                )
        return components

    def report_once(self, key: object) -> bool:
        """Return True the first time ``key`` is seen, so a warning is logged once per file read."""
        if key in self._reported:
            return False
        self._reported.add(key)
        return True

    def _job_for(self, component: icalendar.Event) -> ScheduledJob:
        uid = str(component["UID"])
        recurrence_id = component.get("RECURRENCE-ID")
        if recurrence_id is not None:
            override = self._overrides.get((uid, _to_utc(recurrence_id.dt)))
            if override is not None:
                return override
        if uid in self._masters:
            return self._masters[uid]
        return next(job for (key, _), job in self._overrides.items() if key == uid)


def load_calendar(path: Path | str) -> Calendar:
    """Read and validate a calendar file: iCalendar by its suffix (.ics), otherwise CSV.

    Raises CalendarFileError naming the file, the CSV line or the iCalendar event, the field and
    the value of the first problem found.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CalendarFileError(
            path, "file not found; check --calendar or COSTWARDEN_CALENDAR_FILE"
        ) from exc
    except OSError as exc:
        raise CalendarFileError(path, f"cannot read the file: {exc.strerror}") from exc

    if path.suffix.lower() in ICS_SUFFIXES:
        calendar = _load_ics(str(path), data)
    else:
        calendar = _load_csv(str(path), data)
    logger.info("calendar %s: %d scheduled jobs", path, len(calendar.jobs))
    return calendar


def cached_calendar(path: Path | str) -> Calendar:
    """Return the calendar of ``path``, read again only when the file's time or size changes.

    One pass evaluates many budgets against the same file, so it is parsed once per pass.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return load_calendar(path)
    return _load_cached(str(path), str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load_cached(path: str, resolved: str, mtime_ns: int, size: int) -> Calendar:
    return load_calendar(path)


# Job fields, shared by both formats.


def _job(
    uid: str, name: str, fields: dict[str, str], where: _Where, catalog: PriceCatalog
) -> ScheduledJob:
    cost, currency, pricing = _cost(fields, where, catalog)
    return ScheduledJob(
        uid=uid,
        name=name,
        cost=cost,
        currency=currency,
        scope=_scope(fields, where),
        origin=where.describe(),
        in_history=_flag(fields.get("in_history"), "in_history", where),
        pricing=pricing,
    )


def _cost(
    fields: dict[str, str], where: _Where, catalog: PriceCatalog
) -> tuple[Decimal, str, str | None]:
    amount, node_hours = fields.get("cost"), fields.get("node_hours")
    cost_name, hours_name = where.field_name("cost"), where.field_name("node_hours")
    if amount is not None and node_hours is not None:
        raise where.error(
            f"both {cost_name} and {hours_name} are set; keep either the cost or the node-hours "
            "to price"
        )
    if amount is None and node_hours is None:
        raise where.error(
            f"missing cost; add {cost_name} with {where.field_name('currency')}, or {hours_name} "
            f"with {where.field_name('instance_type')}, {where.field_name('cloud')} and "
            f"{where.field_name('region')}"
        )
    if amount is not None:
        return _fixed_cost(amount, fields, where)
    return _priced_cost(node_hours or "", fields, where, catalog)


def _fixed_cost(text: str, fields: dict[str, str], where: _Where) -> tuple[Decimal, str, None]:
    for name in _NODE_FIELDS:
        if name in fields:
            raise where.error(
                f"only used with {where.field_name('node_hours')}; remove it or give node-hours "
                f"instead of {where.field_name('cost')}",
                name,
                fields[name],
            )
    amount = _decimal(text, "cost", where, allow_zero=True)
    currency = fields.get("currency")
    if currency is None:
        raise where.error(
            f"{where.field_name('cost')} needs a currency; add {where.field_name('currency')} "
            "with an ISO 4217 code such as USD"
        )
    return amount, _currency(currency, where), None


def _priced_cost(
    text: str, fields: dict[str, str], where: _Where, catalog: PriceCatalog
) -> tuple[Decimal, str, str]:
    hours = _decimal(text, "node_hours", where, allow_zero=False)
    for name in ("instance_type", "cloud", "region"):
        if name not in fields:
            raise where.error(
                f"{where.field_name('node_hours')} needs {where.field_name(name)} to look up "
                "the hourly price"
            )
    currency = _currency(fields.get("currency", PRICE_CURRENCY), where)
    if currency != PRICE_CURRENCY:
        raise where.error(
            f"node-hours are priced in {PRICE_CURRENCY}; remove {where.field_name('currency')} "
            f"or give {where.field_name('cost')} in {currency} instead",
            "currency",
            currency,
        )

    capacity = fields.get("capacity_type", "on-demand").lower()
    if capacity not in ("on-demand", "spot"):
        raise where.error("expected on-demand or spot", "capacity_type", fields["capacity_type"])
    cloud, region, instance_type = fields["cloud"], fields["region"], fields["instance_type"]
    try:
        price = catalog.hourly_price(cloud, region, instance_type, capacity)  # type: ignore[arg-type]
    except PriceNotFoundError as exc:
        name, value = _price_problem(exc, fields)
        raise where.error(str(exc), name, value) from exc

    pricing = (
        f"{hours} node-hours of {instance_type} ({provider_of(cloud)} {region}, {capacity}) "
        f"at {price} {PRICE_CURRENCY}/hour"
    )
    return hours * price, PRICE_CURRENCY, pricing


def _price_problem(exc: PriceNotFoundError, fields: dict[str, str]) -> tuple[str, str]:
    """Return the field and value that a failed price lookup points at."""
    if exc.capacity_type is not None and exc.capacity_type != "on-demand":
        return "capacity_type", exc.capacity_type
    if exc.instance_type is not None:
        return "instance_type", fields["instance_type"]
    if exc.region is not None:
        return "region", fields["region"]
    return "cloud", fields["cloud"]


def _decimal(text: str, name: str, where: _Where, *, allow_zero: bool) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise where.error("not a number; write a decimal such as 1200.00", name, text) from exc
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise where.error(f"must be a finite number, {bound}", name, text)
    if value >= MAX_AMOUNT:
        raise where.error(f"must be less than {MAX_AMOUNT:,}; check the number", name, text)
    return value


def _currency(text: str, where: _Where) -> str:
    code = text.upper()
    if code not in _iso_4217_codes():
        raise where.error("not an ISO 4217 currency code such as USD or EUR", "currency", text)
    return code


@cache
def _iso_4217_codes() -> frozenset[str]:
    return frozenset(currency.alpha_3 for currency in pycountry.currencies)


def _scope(fields: dict[str, str], where: _Where) -> JobScope:
    cluster, project = fields.get("cluster"), fields.get("project")
    namespace = fields.get("namespace")
    if cluster is None and project is None:
        raise where.error(
            f"missing scope; add {where.field_name('cluster')} (name or uid) or "
            f"{where.field_name('project')} to say where the job runs"
        )
    if namespace is not None and cluster is None:
        raise where.error(
            f"a namespace needs {where.field_name('cluster')}; add the cluster it runs in",
            "namespace",
            namespace,
        )
    labels = _labels(fields["labels"], where) if "labels" in fields else {}
    return JobScope(cluster=cluster, project=project, namespace=namespace, labels=labels)


def _labels(text: str, where: _Where) -> dict[str, str]:
    labels = {}
    for term in text.split(","):
        key, sign, value = (part.strip() for part in term.partition("="))
        if not sign or not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise where.error(
                f"invalid label {term.strip()!r}; write key=value pairs separated by commas, "
                "such as team=ml,env=prod",
                "labels",
                text,
            )
        labels[key] = value
    return labels


def _flag(text: str | None, name: str, where: _Where) -> bool:
    if text is None or text.lower() in _FALSE:
        return False
    if text.lower() in _TRUE:
        return True
    raise where.error("expected TRUE or FALSE", name, text)


def _to_utc(value: date | datetime) -> datetime:
    """Convert an iCalendar time to UTC: a date is its UTC midnight, a floating time is UTC."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _check_recurrence(event: icalendar.Event, where: _Where) -> None:
    """Expand an event up to its first occurrence, so a bad rule fails at load time."""
    single = icalendar.Calendar()
    single.add_component(event)
    day_before = _to_utc(event.start) - timedelta(days=1)
    try:
        # after() yields lazily, so a rule with many occurrences costs only the first one.
        next(iter(recurring_ical_events.of(single).after(day_before)), None)
    except (RecurrenceError, ValueError) as exc:
        rule = event.get("RRULE")
        value = rule.to_ical().decode() if rule is not None else None
        raise where.error(f"the recurrence cannot be expanded: {exc}", "rrule", value) from exc


# iCalendar files.


def _load_ics(path: str, data: bytes) -> Calendar:
    try:
        ical = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise CalendarFileError(
            path, f"not a valid iCalendar file: {exc}; export the calendar as .ics (RFC 5545)"
        ) from exc

    events = ical.walk("VEVENT")
    masters_raw = {str(e["UID"]): e for e in events if "UID" in e and "RECURRENCE-ID" not in e}
    catalog = PriceCatalog.packaged()
    masters: dict[str, ScheduledJob] = {}
    overrides: dict[tuple[str, datetime], ScheduledJob] = {}
    defined_zones = {str(zone["TZID"]) for zone in ical.walk("VTIMEZONE") if "TZID" in zone}

    for index, event in enumerate(events, start=1):
        where = _Where(path, event=_event_label(event, index))
        _check_ics_zones(event, defined_zones, where)
        _check_ics_timing(event, where)
        uid, name = str(event["UID"]), str(event.get("SUMMARY") or event["UID"])
        recurrence_id = event.get("RECURRENCE-ID")
        master = masters_raw.get(uid) if recurrence_id is not None else None
        job = _job(uid, name, _ics_fields(event, master, where), where, catalog)

        if recurrence_id is not None:
            overrides[(uid, _to_utc(recurrence_id.dt))] = job
            continue
        if uid in masters:
            raise where.error("duplicate UID; give each job its own UID", "UID", uid)
        _check_recurrence(event, where)
        masters[uid] = job

    jobs = tuple(masters.values()) + tuple(overrides.values())
    return Calendar(path, jobs, ical, masters, overrides)


def _event_label(event: icalendar.Event, index: int) -> str:
    summary = event.get("SUMMARY")
    uid = event.get("UID")
    label = repr(str(uid)) if uid is not None else f"#{index}"
    return f"{label} ({str(summary)!r})" if summary is not None else label


def _check_ics_zones(event: icalendar.Event, defined: set[str], where: _Where) -> None:
    """Reject a TZID that is neither an IANA zone nor a VTIMEZONE of the file.

    icalendar would otherwise read such a time as UTC without a warning.
    """
    for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
        prop = event.get(name)
        zone = prop.params.get("TZID") if prop is not None and hasattr(prop, "params") else None
        if zone is not None and str(zone) not in defined:
            _zone(str(zone), where)


def _check_ics_timing(event: icalendar.Event, where: _Where) -> None:
    for name, message in event.errors:
        raw = event.get(name)
        raise where.error(f"invalid value: {message}", name, None if raw is None else str(raw))

    if "UID" not in event:
        raise where.error("missing UID; add a UID line that is unique for each job")
    if "DTSTART" not in event:
        raise where.error(
            "missing DTSTART; add one, such as DTSTART;TZID=Europe/Berlin:20261121T080000"
        )
    if "DTEND" in event and "DURATION" in event:
        raise where.error("both DTEND and DURATION are set; keep one of them")

    try:
        start, end = event.start, event.end
    except icalendar.InvalidCalendar as exc:
        name = "DURATION" if "DURATION" in event else "DTEND"
        raise where.error(f"invalid event timing: {exc}", name) from exc
    if _to_utc(end) < _to_utc(start):
        name = "DURATION" if "DURATION" in event else "DTEND"
        raise where.error(f"the event ends at {end}, before it starts at {start}", name)


def _ics_fields(
    event: icalendar.Event, master: icalendar.Event | None, where: _Where
) -> dict[str, str]:
    """Return the costwarden properties of an event. A moved occurrence inherits missing ones."""
    fields = {}
    for name in event:
        if not name.startswith(PROPERTY_PREFIX):
            continue
        key = name[len(PROPERTY_PREFIX) :].lower().replace("-", "_")
        if key not in JOB_FIELDS:
            known = ", ".join(PROPERTY_PREFIX + f.upper().replace("_", "-") for f in JOB_FIELDS)
            raise where.error(f"unknown costwarden property; known properties: {known}", name)
        value = event[name]
        if isinstance(value, list):
            raise where.error("set more than once; keep one value", name)
        fields[key] = str(value).strip()

    if master is not None:
        inherited = _ics_fields(master, None, where)
        fields = {**inherited, **fields}
    return {key: value for key, value in fields.items() if value}


# CSV files.


def _load_csv(path: str, data: bytes) -> Calendar:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalendarFileError(
            path, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from exc

    reader = csv.reader(io.StringIO(text, newline=""))
    header = _csv_header(path, next(reader, None))
    ical = icalendar.Calendar()
    ical.add("prodid", "-//costwarden//calendar CSV//EN")
    ical.add("version", "2.0")
    catalog = PriceCatalog.packaged()
    masters: dict[str, ScheduledJob] = {}

    line = reader.line_num + 1
    for cells in reader:
        where = _Where(path, line=line)
        line = reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        row = _csv_row(header, cells, where)
        uid = row.get("uid") or row.get("name", "")
        if uid in masters:
            raise where.error(
                f"duplicate uid, first used on {masters[uid].origin}; give each row its own "
                "name or uid",
                "uid",
                uid,
            )
        job_fields = {key: value for key, value in row.items() if key in JOB_FIELDS}
        masters[uid] = _job(uid, row["name"], job_fields, where, catalog)
        event = _csv_event(uid, row, where)
        _check_recurrence(event, where)
        ical.add_component(event)

    return Calendar(path, tuple(masters.values()), ical, masters, {})


def _csv_header(path: str, header: list[str] | None) -> list[str]:
    if header is None:
        raise CalendarFileError(
            path, f"empty file; the first line must name the columns: {', '.join(CSV_COLUMNS)}"
        )
    names = [name.strip().lower() for name in header]
    for name in names:
        if name not in CSV_COLUMNS:
            raise CalendarFileError(
                path,
                f"unknown column; known columns: {', '.join(CSV_COLUMNS)}",
                line=1,
                field=name or "(empty)",
            )
    for required in ("name", "start"):
        if required not in names:
            raise CalendarFileError(path, f"missing column {required!r} in the header", line=1)
    if "cost" not in names and "node_hours" not in names:
        raise CalendarFileError(path, "the header needs a cost or a node_hours column", line=1)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CalendarFileError(
            path, "column named twice in the header; keep one", line=1, field=repeated[0]
        )
    return names


def _csv_row(header: list[str], cells: list[str], where: _Where) -> dict[str, str]:
    if len(cells) != len(header):
        raise where.error(
            f"{len(cells)} cells but the header has {len(header)} columns; quote values that "
            "contain commas"
        )
    row = {name: cell.strip() for name, cell in zip(header, cells, strict=True) if cell.strip()}
    for required in ("name", "start"):
        if required not in row:
            raise where.error("missing value", required)
    return row


def _csv_event(uid: str, row: dict[str, str], where: _Where) -> icalendar.Event:
    """Build the iCalendar event of a CSV row, so both formats expand the same way."""
    zone = _zone(row.get("timezone"), where)
    start = _csv_time(row["start"], zone, "start", where)
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("summary", row["name"])
    event.add("dtstart", start)

    if "end" in row and "duration" in row:
        raise where.error(
            "both end and duration are set; keep one of them", "duration", row["duration"]
        )
    if "end" in row:
        end = _csv_time(row["end"], zone, "end", where, like=start)
        if _to_utc(end) < _to_utc(start):
            raise where.error(f"ends before the start {row['start']}", "end", row["end"])
        event.add("dtend", end)
    if "duration" in row:
        event.add("duration", _csv_duration(row["duration"], start, where))
    if "rrule" in row:
        event.add("rrule", _csv_rule(row["rrule"], where))
    if "exdate" in row:
        parts = [part for part in re.split(r"[;\s]+", row["exdate"]) if part]
        event.add("exdate", [_csv_time(part, zone, "exdate", where, like=start) for part in parts])
    return event


def _zone(name: str | None, where: _Where) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise where.error(
            "unknown time zone; use an IANA name such as Europe/Berlin", "timezone", name
        ) from exc


def _csv_time(
    text: str, zone: ZoneInfo | None, name: str, where: _Where, like: date | None = None
) -> date | datetime:
    """Parse an ISO date or date-time. A time without an offset is in ``zone``, or else UTC."""
    try:
        value: date | datetime = (
            date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        )
    except ValueError as exc:
        raise where.error(
            "not an ISO 8601 date or date-time such as 2026-11-21 or 2026-11-21T08:00:00+01:00",
            name,
            text,
        ) from exc

    if like is not None and isinstance(like, datetime) != isinstance(value, datetime):
        kind = "a date-time" if isinstance(like, datetime) else "a date"
        raise where.error(f"must be {kind}, like start", name, text)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=zone or UTC)
    elif isinstance(value, datetime) and zone is not None:
        value = value.astimezone(zone)
    return value


def _csv_duration(text: str, start: date | datetime, where: _Where) -> timedelta:
    try:
        duration = icalendar.vDuration.from_ical(text)
    except (ValueError, icalendar.InvalidCalendar) as exc:
        raise where.error(
            "not an ISO 8601 duration such as PT6H, PT90M or P1D", "duration", text
        ) from exc
    if duration < timedelta(0):
        raise where.error("must not be negative", "duration", text)
    if not isinstance(start, datetime) and duration % timedelta(days=1):
        raise where.error("an all-day job lasts whole days, such as P1D", "duration", text)
    return duration


def _csv_rule(text: str, where: _Where) -> icalendar.vRecur:
    rule = text.removeprefix("RRULE:")
    try:
        parsed = icalendar.vRecur.from_ical(rule)
    except ValueError as exc:
        raise where.error(f"invalid recurrence rule: {exc}", "rrule", text) from exc
    if "FREQ" not in parsed:
        raise where.error(
            "the rule has no FREQ; write an RFC 5545 rule such as FREQ=WEEKLY;BYDAY=SA",
            "rrule",
            text,
        )
    return parsed

"""Ingestion of FOCUS billing exports (FinOps Open Cost and Usage Specification 1.0, 1.1 and 1.2).

The export is read as a stream (``focus_reader``): CSV, plain or gzip-compressed, with physical
line numbers, or Parquet batch by batch. Each row becomes one resource-grain ``CostRecord``. One
file is written in one transaction together with its ``IngestBatch`` row, so a fatal error
anywhere in the file leaves the database as it was.

FOCUS rows have no identity of their own, so a record's fingerprint is the SHA-256 of the whole
row: every column, sorted by name, with each value normalised by its FOCUS type (decimals, UTC
date-times, key-value JSON). Re-ingesting a file therefore changes nothing, and a Parquet copy of
a CSV export gives the same fingerprints as long as the conversion keeps the values. Two rows with
the same fingerprint are taken as one charge exported twice: the first is kept and the repeat is
reported.

A provider that restates a month-to-date export (a corrected cost) gives the corrected rows new
fingerprints. A plain ingest stores them next to the old facts and warns when the export looks
restated. With ``replace=True`` the files are one export written in one transaction, and the
stored FOCUS facts of the export's providers, sub-accounts and charge days that the export no
longer contains are deleted (see ``focus_restatement``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

import pycountry
from sqlalchemy import String
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from costwarden.config import FocusSettings
from costwarden.domain.cost import CostRecord, IngestReport
from costwarden.errors import FocusFormatError, StoreError
from costwarden.sources.focus_reader import (
    Export,
    Invalid,
    fingerprint,
    open_export,
    parser_for,
    shorten,
    tag_text,
)
from costwarden.sources.focus_restatement import (
    ExportScope,
    delete_superseded,
    high_water_mark,
    measure_overlap,
)
from costwarden.store import Store, UpsertCounts, upsert_facts
from costwarden.store.tables import CostFact, IngestBatch

logger = logging.getLogger(__name__)

SOURCE = "focus"

FOCUS_COLUMNS = frozenset({
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName",
    "BillingAccountType", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "CapacityReservationId", "CapacityReservationStatus", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountQuantity", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "CommitmentDiscountUnit", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingCurrency", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId",
    "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "ServiceSubcategory",
    "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId", "SubAccountId", "SubAccountName",
    "SubAccountType", "Tags",
})
"""Every column that FOCUS 1.0, 1.1 or 1.2 defines; 1.1 and 1.2 only added columns."""

REQUIRED_COLUMNS = (
    "ChargePeriodStart", "ChargePeriodEnd", "BillingCurrency", "ProviderName", "ServiceName"
)
"""Mapped columns that FOCUS makes mandatory in every dataset; the cost column is added per run.

ProviderName stays mandatory through FOCUS 1.2, which defines no ServiceProviderName column.
SubAccountId, ResourceId, RegionId and Tags are mandatory only when the provider has the concept
(sub accounts, resources, regions, tags), so they may be absent and then map to NULL.
"""

OPTIONAL_COLUMNS = ("SubAccountId", "ResourceId", "RegionId", "Tags")
CUSTOM_COLUMN_PREFIX = "x_"
"""FOCUS reserves this prefix for provider-specific columns."""

NEGATIVE_CHARGE_CATEGORIES = frozenset({"Credit", "Adjustment"})
CORRECTION_CHARGE_CLASS = "Correction"

CLOUD_ALIASES = {
    "aws": "aws",
    "amazon": "aws",
    "amazon web services": "aws",
    "azure": "azure",
    "microsoft": "azure",
    "microsoft azure": "azure",
    "gcp": "gcp",
    "google": "gcp",
    "google cloud": "gcp",
    "google cloud platform": "gcp",
}
"""Lower-case ProviderName values mapped to costwarden's cloud names; others stay lower-case."""

ISO_4217_CODES = frozenset(currency.alpha_3 for currency in pycountry.currencies)
MAX_EXAMPLES_PER_KIND = 5
"""Warnings listed one by one per kind; the rest of that kind is summarised with a count."""

_AMOUNT_SCALE = CostFact.__table__.c.amount.type.impl.scale
_AMOUNT_STEP = Decimal(1).scaleb(-_AMOUNT_SCALE)
"""Amounts are rounded to the scale of the store's Money column (NUMERIC(24, 10) on PostgreSQL),
so both backends keep the same value and re-ingesting a file finds every fact unchanged."""


def _column_length(name: str) -> int | None:
    column_type = CostFact.__table__.c[name].type
    return column_type.length if isinstance(column_type, String) else None


_FIELD_LENGTHS = {
    name: _column_length(name)
    for name in ("cloud", "account_id", "service", "region", "cluster_name", "namespace")
}


@dataclass(frozen=True, slots=True)
class FocusIngestReport(IngestReport):
    """The outcome of ingesting one FOCUS export.

    ``window_start`` and ``window_end`` are the first and last UTC day on which a kept row's charge
    period starts. ``warnings`` covers rows kept despite breaking a rule, skipped duplicate rows,
    columns outside FOCUS and an export that looks restated. It lists at most
    ``MAX_EXAMPLES_PER_KIND`` messages per kind plus a summary line for the rest, while
    ``warning_count`` counts every warning. ``totals`` sums the stored amounts per currency.
    ``replaced`` counts the stored facts that a replacing ingest deleted for this file.
    """

    cost_column: str = "EffectiveCost"
    duplicates: int = 0
    warning_count: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)
    replace: bool = False
    replaced: int = 0


class _Summary(NamedTuple):
    """The singular and plural phrase that sums up the unlisted warnings of one kind."""

    singular: str
    plural: str


_WARNING_KINDS = {
    "column": _Summary("column outside FOCUS", "columns outside FOCUS"),
    "offset": _Summary(
        "date-time with a UTC offset other than zero, converted to UTC",
        "date-times with a UTC offset other than zero, converted to UTC",
    ),
    "currency": _Summary(
        "row with a currency code outside ISO 4217", "rows with a currency code outside ISO 4217"
    ),
    "currency-case": _Summary(
        "row with a lower-case currency code", "rows with a lower-case currency code"
    ),
    "tags": _Summary(
        "row whose Tags is not a JSON object, kept without tags",
        "rows whose Tags is not a JSON object, kept without tags",
    ),
    "period": _Summary(
        "row whose ChargePeriodEnd is not after ChargePeriodStart",
        "rows whose ChargePeriodEnd is not after ChargePeriodStart",
    ),
    "negative": _Summary(
        "row with a negative cost outside credits, adjustments and corrections",
        "rows with a negative cost outside credits, adjustments and corrections",
    ),
    "length": _Summary(
        "value cut to the length of its database column",
        "values cut to the length of their database column",
    ),
    "duplicate": _Summary(
        "row that repeats an earlier row exactly, skipped",
        "rows that repeat an earlier row exactly, skipped",
    ),
}


class _WarningLog:
    """Warnings about one export, with a few examples per kind and a full count.

    Row and column warnings carry their line or row. Warnings about the whole file come first.
    """

    def __init__(self, export: Export) -> None:
        self._export = export
        self._file_messages: list[str] = []
        self._examples: dict[str, list[str]] = {}
        self._counts: dict[str, int] = {}
        self.count = 0

    def add(self, kind: str, number: int | None, message: str) -> None:
        """Record one warning of a kind from ``_WARNING_KINDS`` at a line, row or the schema."""
        self.count += 1
        self._counts[kind] = self._counts.get(kind, 0) + 1
        examples = self._examples.setdefault(kind, [])
        if len(examples) < MAX_EXAMPLES_PER_KIND:
            examples.append(f"{self._export.label(number)}: {message}")

    def add_file_warning(self, message: str) -> None:
        self.count += 1
        self._file_messages.append(message)

    def render(self) -> tuple[str, ...]:
        lines = list(self._file_messages)
        for kind, examples in self._examples.items():
            lines.extend(examples)
            rest = self._counts[kind] - len(examples)
            if rest:
                summary = _WARNING_KINDS[kind]
                phrase = summary.singular if rest == 1 else summary.plural
                lines.append(f"{rest} more {phrase} (not listed)")
        return tuple(lines)


# Mapping ----------------------------------------------------------------------------------------


class _RowMapper:
    """Maps the parsed cells of one row to a ``CostRecord``, raising on fatal problems."""

    def __init__(self, export: Export, settings: FocusSettings, warnings: _WarningLog) -> None:
        self._export = export
        self._settings = settings
        self._warnings = warnings
        self._cost_column = settings.cost_column

    def record(self, number: int, cells: dict[str, Any], fingerprint: str) -> CostRecord:
        start = self._period(number, cells, "ChargePeriodStart")
        end = self._period(number, cells, "ChargePeriodEnd")
        amount = self._amount(number, cells)
        currency = self._currency(number, cells)
        tags = self._tags(number, cells)

        self._check_period(number, start, end)
        self._check_sign(number, cells, amount)

        settings = self._settings
        provider = cells.get("ProviderName")
        cloud = CLOUD_ALIASES.get(provider.lower(), provider.lower()) if provider else None
        return CostRecord(
            source=SOURCE,
            grain="resource",
            period_start=start,
            period_end=end,
            amount=amount,
            currency=currency,
            cloud=self._fit(number, "cloud", "ProviderName", cloud),
            account_id=self._fit(number, "account_id", "SubAccountId", cells.get("SubAccountId")),
            service=self._fit(number, "service", "ServiceName", cells.get("ServiceName")),
            resource_id=cells.get("ResourceId"),
            region=self._fit(number, "region", "RegionId", cells.get("RegionId")),
            cluster_name=self._tag_value(number, "cluster_name", tags, settings.cluster_tag_keys),
            namespace=self._tag_value(number, "namespace", tags, settings.namespace_tag_keys),
            tags=tags,
            fingerprint=fingerprint,
        )

    def _fail(
        self, number: int, column: str, message: str, value: object = None
    ) -> FocusFormatError:
        return FocusFormatError(
            self._export.path, message, column=column, value=value, **self._export.location(number)
        )

    def _period(self, number: int, cells: dict[str, Any], column: str) -> datetime:
        value = cells[column]
        if value is None:
            raise self._fail(
                number, column, "the charge period bound is empty; FOCUS requires "
                "ChargePeriodStart and ChargePeriodEnd on every row, so fix the row or re-export "
                "the file"
            )
        if isinstance(value, Invalid):
            raise self._fail(
                number, column, "not a date and time; expected ISO 8601 in UTC such as "
                "2024-09-01T00:00:00Z or 2024-09-01 00:00:00", value.text
            )
        if value.utcoffset():
            self._warnings.add(
                "offset", number,
                f"{column} {value.isoformat()} is not in UTC as FOCUS requires; converted to UTC",
            )
        return value.astimezone(UTC)

    def _amount(self, number: int, cells: dict[str, Any]) -> Decimal:
        column = self._cost_column
        value = cells[column]
        if value is None:
            raise self._fail(
                number, column, "the cost is empty; FOCUS requires a cost on every row, so fix "
                "the row or choose another cost column with --cost-column"
            )
        if isinstance(value, Invalid):
            raise self._fail(
                number, column, "the cost is not a number; expected a decimal such as 12.34, "
                "without thousands separators or a currency symbol", value.text
            )
        try:
            return value.quantize(_AMOUNT_STEP, rounding=ROUND_HALF_EVEN)
        except InvalidOperation as exc:
            raise self._fail(
                number, column, "the cost is too large to store; check the value", str(value)
            ) from exc

    def _currency(self, number: int, cells: dict[str, Any]) -> str:
        value = cells["BillingCurrency"]
        if value is None:
            raise self._fail(
                number, "BillingCurrency", "the currency is empty; every FOCUS row needs the "
                "ISO 4217 code of its billing currency, such as USD, so fix the export"
            )
        if not (len(value) == 3 and value.isascii() and value.isalpha()):
            raise self._fail(
                number, "BillingCurrency", "not a three-letter ISO 4217 currency code such as USD "
                "or EUR; fix the export", value
            )
        code = value.upper()
        if code not in ISO_4217_CODES:
            self._warnings.add(
                "currency", number,
                f"BillingCurrency {value} is not an ISO 4217 code; kept as {code}",
            )
        elif code != value:
            self._warnings.add(
                "currency-case", number,
                f"BillingCurrency {value} is not upper case; stored as {code}",
            )
        return code

    def _tags(self, number: int, cells: dict[str, Any]) -> dict[str, str]:
        value = cells.get("Tags")
        if value is None:
            return {}
        if isinstance(value, Invalid):
            self._warnings.add(
                "tags", number, f"Tags is not a JSON object; the row is kept without tags: "
                f"{shorten(value.text)!r}",
            )
            return {}
        return {str(key): tag_text(item) for key, item in value.items()}

    def _check_period(self, number: int, start: datetime, end: datetime) -> None:
        if end > start:
            return
        self._warnings.add(
            "period", number,
            f"ChargePeriodEnd {end.isoformat()} is not after ChargePeriodStart {start.isoformat()}",
        )

    def _check_sign(self, number: int, cells: dict[str, Any], amount: Decimal) -> None:
        """Warn about a negative cost unless the row is a credit, an adjustment or a correction."""
        if amount >= 0:
            return
        category = cells.get("ChargeCategory")
        if category in NEGATIVE_CHARGE_CATEGORIES:
            return
        if cells.get("ChargeClass") == CORRECTION_CHARGE_CLASS:
            return
        original = format(cells[self._cost_column], "f")
        self._warnings.add(
            "negative", number,
            f"{self._cost_column} {original} is negative on a {category or 'NULL'} charge that "
            "is not a credit, an adjustment or a correction; kept as is",
        )

    def _fit(self, number: int, name: str, column: str, value: str | None) -> str | None:
        """Cut a value to the length of its database column, with a warning."""
        limit = _FIELD_LENGTHS[name]
        if value is None or limit is None or len(value) <= limit:
            return value
        self._warnings.add(
            "length", number,
            f"{column} is {len(value)} characters; the first {limit} are stored as {name}",
        )
        return value[:limit]

    def _tag_value(
        self, number: int, name: str, tags: dict[str, str], keys: list[str]
    ) -> str | None:
        for key in keys:
            value = tags.get(key)
            if value:
                return self._fit(number, name, f"Tags[{key!r}]", value)
        return None


# Ingestion --------------------------------------------------------------------------------------


class _FileIngest:
    """Turns the rows of one export file into records and counts what the report needs."""

    def __init__(self, export: Export, settings: FocusSettings) -> None:
        self.export = export
        self.batch_id = str(uuid.uuid4())
        self.started = datetime.now(UTC)
        self.warnings = _WarningLog(export)
        self.rows_read = 0
        self.duplicates = 0
        self.totals: dict[str, Decimal] = {}
        self.scope = ExportScope()
        self.rows_per_day: dict[date, int] = {}
        self.counts = UpsertCounts()
        self.replaced = 0
        self.seconds = 0.0
        self._mapper = _RowMapper(export, settings, self.warnings)
        # One digest per kept row stays in memory to find repeats and, when replacing, the stored
        # facts that the export still contains. Memory grows with the file.
        self._seen: dict[bytes, int] = {}

    def records(self) -> Iterator[CostRecord]:
        columns = self.export.columns
        parsers = [parser_for(name) for name in columns]
        ordered = sorted(columns)
        for number, values in self.export.rows:
            self.rows_read += 1
            cells = {
                name: parse(raw) for name, parse, raw in zip(columns, parsers, values, strict=True)
            }
            digest = fingerprint(ordered, cells)

            first = self._seen.setdefault(digest, number)
            if first != number:
                self._report_duplicate(number, first)
                continue

            record = self._mapper.record(number, cells, digest.hex())
            self._tally(record)
            yield record

    def contains(self, fact_key: str) -> bool:
        """Tell whether a stored fact key is the key of one of the rows read so far."""
        prefix = f"{SOURCE}:"
        if not fact_key.startswith(prefix):
            return False
        try:
            return bytes.fromhex(fact_key[len(prefix) :]) in self._seen
        except ValueError:
            return False

    def _report_duplicate(self, number: int, first: int) -> None:
        self.duplicates += 1
        self.warnings.add(
            "duplicate", number,
            f"repeats {self.export.label(first)} exactly; the repeat was skipped as the same "
            "charge exported twice",
        )

    def _tally(self, record: CostRecord) -> None:
        self.totals[record.currency] = self.totals.get(record.currency, Decimal(0)) + record.amount
        day = record.day
        self.scope.add(record.cloud, record.account_id, day)
        self.rows_per_day[day] = self.rows_per_day.get(day, 0) + 1


def _check_columns(export: Export, cost_column: str, warnings: _WarningLog) -> None:
    """Raise on a missing mandatory column and warn about columns that FOCUS does not define."""
    present = set(export.columns)
    missing = [name for name in (*REQUIRED_COLUMNS, cost_column) if name not in present]
    if missing:
        lowered = {name.lower(): name for name in export.columns}
        hints = [
            f"{lowered[name.lower()]} should be spelled {name}"
            for name in missing
            if name.lower() in lowered
        ]
        hint = f" (column names are case-sensitive: {', '.join(hints)})" if hints else ""
        raise FocusFormatError(
            export.path,
            f"missing required FOCUS column(s) {', '.join(missing)}{hint}; FOCUS 1.0 to 1.2 make "
            "them mandatory, so export the complete FOCUS dataset",
            column=missing[0],
            **export.header_location(),
        )

    header = export.header_line
    for name in export.columns:
        if name not in FOCUS_COLUMNS and not name.startswith(CUSTOM_COLUMN_PREFIX):
            warnings.add(
                "column", header,
                f"column {name!r} is not a FOCUS 1.0 to 1.2 column and lacks the x_ prefix of "
                "custom columns; it only counts towards the row fingerprint",
            )
    for name in OPTIONAL_COLUMNS:
        if name not in present:
            logger.info("%s has no %s column; the field is empty for every row", export.path, name)


@contextmanager
def _transaction(store: Store, origins: list[Path]) -> Iterator[Session]:
    """Yield the session of one transaction, rolled back on any error.

    A database error becomes a ``StoreError`` that names the files.
    """
    try:
        with store.transaction() as session:
            yield session
    except SQLAlchemyError as exc:
        names = ", ".join(str(origin) for origin in origins)
        files = "the file" if len(origins) == 1 else "these files"
        raise StoreError(
            f"the database failed while ingesting {names} ({exc.__class__.__name__}: "
            f"{exc.args[0]}); nothing from {files} was committed"
        ) from exc


def _upsert(session: Session, ingest: _FileIngest) -> None:
    clock = time.perf_counter()
    ingest.counts = upsert_facts(session, ingest.records(), ingest.batch_id)
    ingest.seconds = time.perf_counter() - clock


def _batch_row(ingest: _FileIngest) -> IngestBatch:
    return IngestBatch(
        id=ingest.batch_id,
        source=SOURCE,
        origin=str(ingest.export.path),
        started_at=ingest.started,
        finished_at=datetime.now(UTC),
        rows_read=ingest.rows_read,
        facts_inserted=ingest.counts.inserted,
        facts_updated=ingest.counts.updated,
        facts_unchanged=ingest.counts.unchanged,
        warnings=list(ingest.warnings.render()),
    )


def _warn_if_restated(session: Session, ingest: _FileIngest, high_water: int) -> None:
    overlap = measure_overlap(
        session, ingest.scope, ingest.rows_per_day, ingest.batch_id, high_water
    )
    if not overlap.looks_restated:
        return
    days = "1 charge day" if overlap.days == 1 else f"{overlap.days} charge days"
    ingest.warnings.add_file_warning(
        f"the export looks restated: {overlap.new_rows} of its {overlap.rows} rows on the {days} "
        f"from {overlap.first_day} to {overlap.last_day} have new fingerprints, although "
        f"{overlap.stored} facts of the same providers and sub-accounts were already stored on "
        "those days. Corrected rows are now counted next to the rows they correct, so ingest the "
        "file again with --replace to keep only this export's rows for its providers, "
        "sub-accounts and charge days"
    )


def _ingest_file(
    store: Store, source: Path, settings: FocusSettings, high_water: int
) -> FocusIngestReport:
    """Ingest one file in its own transaction and warn if it looks restated."""
    with open_export(source) as export:
        ingest = _FileIngest(export, settings)
        _check_columns(export, settings.cost_column, ingest.warnings)
        with _transaction(store, [source]) as session:
            _upsert(session, ingest)
            _warn_if_restated(session, ingest, high_water)
            session.add(_batch_row(ingest))

    report = _report(ingest, settings, replace=False)
    _log_report(report, ingest.seconds)
    return report


def _ingest_replacing(
    store: Store, sources: list[Path], settings: FocusSettings
) -> list[FocusIngestReport]:
    """Ingest the files of one export in one transaction and delete the facts it supersedes."""
    ingests: list[_FileIngest] = []
    with _transaction(store, sources) as session:
        high_water = high_water_mark(session)
        for source in sources:
            with open_export(source) as export:
                ingest = _FileIngest(export, settings)
                _check_columns(export, settings.cost_column, ingest.warnings)
                _upsert(session, ingest)
            ingests.append(ingest)

        replaced = delete_superseded(
            session,
            [ingest.scope for ingest in ingests],
            high_water,
            lambda fact_key: any(ingest.contains(fact_key) for ingest in ingests),
        )
        for ingest, count in zip(ingests, replaced, strict=True):
            ingest.replaced = count
            session.add(_batch_row(ingest))

    reports = [_report(ingest, settings, replace=True) for ingest in ingests]
    for ingest, report in zip(ingests, reports, strict=True):
        _log_report(report, ingest.seconds)
    return reports


def _read_high_water(store: Store, sources: list[Path]) -> int:
    with _transaction(store, sources) as session:
        return high_water_mark(session)


def ingest_focus_files(
    store: Store, paths: Iterable[Path | str], settings: FocusSettings, *, replace: bool = False
) -> Iterator[FocusIngestReport]:
    """Ingest FOCUS export files (CSV, ``.csv.gz`` or Parquet) in order, yielding each report.

    Without ``replace`` each file has its own transaction and its report is yielded once it is
    committed, so the files before a broken one stay committed. A file whose rows on already
    stored days mostly have new fingerprints gets a warning that the export looks restated. Facts
    that earlier files of the same call inserted do not count as stored for that check, so the
    parts of one export are not taken for a restatement.

    With ``replace`` the files are the parts of one export and share one transaction. After the
    upsert, the facts stored before the call that fall in the export's scope but match none of its
    rows are deleted. The scope is source ``focus``, the export's (provider, sub-account) pairs
    with NULL as a value of its own, and its first to last charge day. A file without rows
    replaces nothing. A broken file stores and deletes nothing from any of the files.

    Raises ``FocusFormatError`` for a missing mandatory column, an empty or non-numeric cost, an
    empty or unparsable charge period bound, an empty or malformed currency, or a malformed file,
    and ``StoreError`` when the database fails. Problems that leave a row usable become warnings.
    """
    sources = [Path(path).resolve() for path in paths]
    if replace:
        yield from _ingest_replacing(store, sources, settings)
        return

    high_water = _read_high_water(store, sources)
    for source in sources:
        yield _ingest_file(store, source, settings, high_water)


def ingest_focus(
    store: Store, path: Path | str, settings: FocusSettings, *, replace: bool = False
) -> FocusIngestReport:
    """Ingest one FOCUS export file in one transaction; see ``ingest_focus_files``."""
    [report] = ingest_focus_files(store, [path], settings, replace=replace)
    return report


def _report(ingest: _FileIngest, settings: FocusSettings, *, replace: bool) -> FocusIngestReport:
    return FocusIngestReport(
        source=SOURCE,
        origin=str(ingest.export.path),
        batch_id=ingest.batch_id,
        rows_read=ingest.rows_read,
        inserted=ingest.counts.inserted,
        updated=ingest.counts.updated,
        unchanged=ingest.counts.unchanged,
        warnings=ingest.warnings.render(),
        window_start=ingest.scope.first_day,
        window_end=ingest.scope.last_day,
        cost_column=settings.cost_column,
        duplicates=ingest.duplicates,
        warning_count=ingest.warnings.count,
        totals=dict(ingest.totals),
        replace=replace,
        replaced=ingest.replaced,
    )


def _log_report(report: FocusIngestReport, seconds: float) -> None:
    logger.info(
        "ingested %s: %d rows read, %d inserted, %d updated, %d unchanged, %d duplicates, "
        "%d stored facts replaced, upserted in %.2f s",
        report.origin, report.rows_read, report.inserted, report.updated, report.unchanged,
        report.duplicates, report.replaced, seconds,
    )
    if report.warning_count:
        logger.warning(
            "%s: %d %s; the ingest report lists them",
            report.origin, report.warning_count,
            "warning" if report.warning_count == 1 else "warnings",
        )

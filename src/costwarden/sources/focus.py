"""Ingestion of FOCUS billing exports (FinOps Open Cost and Usage Specification 1.0, 1.1 and 1.2).

The export is read as a stream: CSV, plain or gzip-compressed, goes through the ``csv`` module so
that every message carries a physical line number, and Parquet is read batch by batch with
pyarrow. Each row becomes one resource-grain ``CostRecord``. One file is written in one transaction
together with its ``IngestBatch`` row, so a fatal error anywhere in the file leaves the database as
it was.

FOCUS rows have no identity of their own, so a record's fingerprint is the SHA-256 of the whole
row: every column, sorted by name, with each value normalised by its FOCUS type (decimals, UTC
date-times, key-value JSON). Re-ingesting a file therefore changes nothing, and a Parquet copy of
a CSV export gives the same fingerprints as long as the conversion keeps the values. Two rows with
the same fingerprint are taken as one charge exported twice: the first is kept and the repeat is
reported.

NOTE: a provider that restates a row (a corrected cost) produces a new fingerprint, so the corrected
row is stored next to the old fact instead of replacing it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
import pycountry
from sqlalchemy import String
from sqlalchemy.exc import SQLAlchemyError

from costwarden.config import FocusSettings
from costwarden.domain.cost import CostRecord, IngestReport
from costwarden.errors import FocusFormatError, StoreError
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

DECIMAL_COLUMNS = frozenset({
    "BilledCost", "CommitmentDiscountQuantity", "ConsumedQuantity", "ContractedCost",
    "ContractedUnitPrice", "EffectiveCost", "ListCost", "ListUnitPrice",
    "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice", "PricingQuantity",
})
DATETIME_COLUMNS = frozenset(
    {"BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"}
)
KEY_VALUE_COLUMNS = frozenset({"SkuPriceDetails", "Tags"})

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

PARQUET_BATCH_ROWS = 10_000
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"

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
    period starts. ``warnings`` lists at most ``MAX_EXAMPLES_PER_KIND`` messages per kind plus a
    summary line for the rest, while ``warning_count`` counts every warning. ``totals`` sums the
    stored amounts per currency.
    """

    cost_column: str = "EffectiveCost"
    duplicates: int = 0
    warning_count: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)


class _Invalid(NamedTuple):
    """A cell whose text does not parse as its column's FOCUS type."""

    text: str


@dataclass
class _Export:
    """An open export: its column names and a stream of ``(line or row number, values)``."""

    path: Path
    columns: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    is_parquet: bool

    def location(self, number: int) -> dict[str, int]:
        """Return the keyword that places an error: ``line`` for CSV, ``row`` for Parquet."""
        return {"row": number} if self.is_parquet else {"line": number}

    def label(self, number: int | None) -> str:
        if number is None:
            return "schema"
        return f"row {number}" if self.is_parquet else f"line {number}"


class _WarningLog:
    """Rows kept despite breaking a rule, with a few examples per kind and a full count."""

    def __init__(self, export: _Export) -> None:
        self._export = export
        self._examples: dict[str, list[str]] = {}
        self._counts: dict[str, int] = {}
        self._summaries: dict[str, str] = {}
        self.count = 0

    def add(self, kind: str, number: int | None, message: str, summary: str) -> None:
        """Record one warning; ``summary`` describes the kind in the line that sums up repeats."""
        self.count += 1
        self._counts[kind] = self._counts.get(kind, 0) + 1
        self._summaries.setdefault(kind, summary)
        examples = self._examples.setdefault(kind, [])
        if len(examples) < MAX_EXAMPLES_PER_KIND:
            examples.append(f"{self._export.label(number)}: {message}")

    def render(self) -> tuple[str, ...]:
        lines: list[str] = []
        for kind, examples in self._examples.items():
            lines.extend(examples)
            rest = self._counts[kind] - len(examples)
            if rest:
                lines.append(f"{rest} more {self._summaries[kind]} (not listed)")
        return tuple(lines)


# Reading -----------------------------------------------------------------------------------------


@contextmanager
def _open_export(path: Path) -> Iterator[_Export]:
    """Open a CSV, gzip-compressed CSV or Parquet export, detected from the file's first bytes."""
    try:
        with path.open("rb") as raw:
            magic = raw.read(4)
    except FileNotFoundError as exc:
        raise FocusFormatError(path, "file not found; check the path") from exc
    except OSError as exc:
        raise FocusFormatError(path, f"cannot read the file: {exc.strerror}") from exc

    if magic == PARQUET_MAGIC:
        yield _parquet_export(path)
        return

    opener = gzip.open if magic.startswith(GZIP_MAGIC) else open
    # utf-8-sig drops the byte order mark that some exporters write before the header.
    with opener(path, "rt", encoding="utf-8-sig", newline="") as stream:
        yield _csv_export(path, stream)


def _csv_export(path: Path, stream: IO[str]) -> _Export:
    reader = csv.reader(stream)
    header = next(_csv_records(path, reader), None)
    if header is None:
        raise FocusFormatError(path, "the file is empty; expected a header row of FOCUS columns")
    columns = _clean_header(path, header[1], is_parquet=False)
    return _Export(path, columns, _csv_rows(path, reader, len(columns)), is_parquet=False)


def _csv_records(path: Path, reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Yield each non-blank CSV record with the line it starts on.

    Read errors become ``FocusFormatError``.
    """
    while True:
        first_line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FocusFormatError(
                path, f"malformed CSV ({exc}); check the quoting of this line", line=first_line
            ) from exc
        except UnicodeDecodeError as exc:
            raise FocusFormatError(
                path, "the text is not UTF-8; re-export the file as UTF-8", line=first_line
            ) from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise FocusFormatError(
                path, f"reading the file failed ({exc}); compressed data may be corrupt or "
                "truncated, so download the file again",
                line=first_line,
            ) from exc
        if record:
            yield first_line, record


def _csv_rows(path: Path, reader: Any, width: int) -> Iterator[tuple[int, list[Any]]]:
    for line, record in _csv_records(path, reader):
        if len(record) != width:
            raise FocusFormatError(
                path,
                f"the row has {len(record)} fields but the header has {width}; check for "
                "unquoted commas or a cut-off line",
                line=line,
            )
        yield line, record


def _parquet_export(path: Path) -> _Export:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise FocusFormatError(path, f"not a readable Parquet file ({exc})") from exc
    columns = _clean_header(path, parquet.schema_arrow.names, is_parquet=True)
    return _Export(path, columns, _parquet_rows(path, parquet), is_parquet=True)


def _parquet_rows(path: Path, parquet: pq.ParquetFile) -> Iterator[tuple[int, list[Any]]]:
    number = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            columns = [column.to_pylist() for column in batch.columns]
            for values in zip(*columns, strict=True):
                number += 1
                yield number, list(values)
    except (pa.ArrowException, OSError) as exc:
        raise FocusFormatError(
            path, f"cannot read the Parquet data ({exc}); the file may be truncated", row=number + 1
        ) from exc


def _clean_header(path: Path, names: list[str], *, is_parquet: bool) -> list[str]:
    columns = [name.strip() for name in names]
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise FocusFormatError(
                path,
                "the column appears twice in the header; remove or rename one of them",
                column=name,
                **({} if is_parquet else {"line": 1}),
            )
        seen.add(name)
    return columns


# Cell values ------------------------------------------------------------------------------------


def _clean(raw: Any) -> Any:
    """Strip text cells and turn empty strings and the literal NULL into None."""
    if isinstance(raw, str):
        text = raw.strip()
        if not text or (len(text) == 4 and text.upper() == "NULL"):
            return None
        return text
    return raw


def _parse_decimal(raw: Any) -> Decimal | _Invalid | None:
    value = _clean(raw)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return _Invalid(str(value))
    try:
        number = Decimal(value) if isinstance(value, str | Decimal) else Decimal(str(value))
    except InvalidOperation:
        return _Invalid(str(value))
    return number if number.is_finite() else _Invalid(str(value))


def _parse_datetime(raw: Any) -> datetime | _Invalid | None:
    """Parse ISO 8601 (``T`` or a space, with or without ``Z``); a time without offset is UTC."""
    value = _clean(raw)
    if value is None:
        return None
    if isinstance(value, datetime):
        # pyarrow returns pandas Timestamps for nanosecond columns. The conversion drops the
        # digits below a microsecond.
        parsed = value.to_pydatetime(warn=False) if hasattr(value, "to_pydatetime") else value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return _Invalid(value)
    else:
        return _Invalid(str(value))

    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


def _parse_key_value(raw: Any) -> dict[str, Any] | _Invalid | None:
    """Parse a FOCUS key-value cell: a JSON object in CSV, a map or a JSON string in Parquet."""
    value = _clean(raw)
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and all(isinstance(pair, tuple) for pair in value):
        return dict(value)
    if not isinstance(value, str):
        return _Invalid(str(value))
    try:
        parsed = json.loads(value)
    except ValueError:
        return _Invalid(value)
    return parsed if isinstance(parsed, dict) else _Invalid(value)


def _parse_text(raw: Any) -> str | None:
    value = _clean(raw)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    canonical = _canonical(_parse_decimal(value) if isinstance(value, float) else value)
    return canonical if isinstance(canonical, str) else json.dumps(canonical, sort_keys=True)


def _parser_for(column: str) -> Callable[[Any], Any]:
    if column in DECIMAL_COLUMNS:
        return _parse_decimal
    if column in DATETIME_COLUMNS:
        return _parse_datetime
    if column in KEY_VALUE_COLUMNS:
        return _parse_key_value
    return _parse_text


def _canonical(value: Any) -> Any:
    """Return the JSON-ready form of a parsed cell that the row fingerprint hashes."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, _Invalid):
        return value.text
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _fingerprint(columns: list[str], cells: dict[str, Any]) -> bytes:
    pairs = [[name, _canonical(cells[name])] for name in columns]
    payload = json.dumps(
        pairs, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(payload.encode()).digest()


def _tag_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Mapping ----------------------------------------------------------------------------------------


class _RowMapper:
    """Maps the parsed cells of one row to a ``CostRecord``, raising on fatal problems."""

    def __init__(self, export: _Export, settings: FocusSettings, warnings: _WarningLog) -> None:
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
        if isinstance(value, _Invalid):
            raise self._fail(
                number, column, "not a date and time; expected ISO 8601 in UTC such as "
                "2024-09-01T00:00:00Z or 2024-09-01 00:00:00", value.text
            )
        if value.utcoffset():
            self._warnings.add(
                "offset", number,
                f"{column} {value.isoformat()} is not in UTC as FOCUS requires; converted to UTC",
                "date-times with a UTC offset other than zero, converted to UTC",
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
        if isinstance(value, _Invalid):
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
                "rows with a currency code outside ISO 4217",
            )
        elif code != value:
            self._warnings.add(
                "currency-case", number,
                f"BillingCurrency {value} is not upper case; stored as {code}",
                "rows with a lower-case currency code",
            )
        return code

    def _tags(self, number: int, cells: dict[str, Any]) -> dict[str, str]:
        value = cells.get("Tags")
        if value is None:
            return {}
        if isinstance(value, _Invalid):
            self._warnings.add(
                "tags", number, f"Tags is not a JSON object; the row is kept without tags: "
                f"{_shorten(value.text)!r}",
                "rows whose Tags is not a JSON object, kept without tags",
            )
            return {}
        return {str(key): _tag_text(item) for key, item in value.items()}

    def _check_period(self, number: int, start: datetime, end: datetime) -> None:
        if end > start:
            return
        self._warnings.add(
            "period", number,
            f"ChargePeriodEnd {end.isoformat()} is not after ChargePeriodStart {start.isoformat()}",
            "rows whose ChargePeriodEnd is not after ChargePeriodStart",
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
            "rows with a negative cost outside credits, adjustments and corrections",
        )

    def _fit(self, number: int, name: str, column: str, value: str | None) -> str | None:
        """Cut a value to the length of its database column, with a warning."""
        limit = _FIELD_LENGTHS[name]
        if value is None or limit is None or len(value) <= limit:
            return value
        self._warnings.add(
            "length", number,
            f"{column} is {len(value)} characters; the first {limit} are stored as {name}",
            "values cut to the length of their database column",
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
    """Turns the rows of one export into records and counts what the report needs."""

    def __init__(self, export: _Export, settings: FocusSettings) -> None:
        self.export = export
        self.warnings = _WarningLog(export)
        self.rows_read = 0
        self.duplicates = 0
        self.totals: dict[str, Decimal] = {}
        self.first_day: date | None = None
        self.last_day: date | None = None
        self._mapper = _RowMapper(export, settings, self.warnings)
        # One digest per kept row stays in memory to find repeats, so memory grows with the file.
        self._seen: dict[bytes, int] = {}

    def records(self) -> Iterator[CostRecord]:
        columns = self.export.columns
        parsers = [_parser_for(name) for name in columns]
        ordered = sorted(columns)
        for number, values in self.export.rows:
            self.rows_read += 1
            cells = {
                name: parse(raw) for name, parse, raw in zip(columns, parsers, values, strict=True)
            }
            digest = _fingerprint(ordered, cells)

            first = self._seen.setdefault(digest, number)
            if first != number:
                self._report_duplicate(number, first)
                continue

            record = self._mapper.record(number, cells, digest.hex())
            self._tally(record)
            yield record

    def _report_duplicate(self, number: int, first: int) -> None:
        self.duplicates += 1
        self.warnings.add(
            "duplicate", number,
            f"repeats {self.export.label(first)} exactly; the repeat was skipped as the same "
            "charge exported twice",
            "rows that repeat an earlier row exactly, skipped",
        )

    def _tally(self, record: CostRecord) -> None:
        self.totals[record.currency] = self.totals.get(record.currency, Decimal(0)) + record.amount
        day = record.day
        if self.first_day is None or day < self.first_day:
            self.first_day = day
        if self.last_day is None or day > self.last_day:
            self.last_day = day


def _check_columns(export: _Export, cost_column: str, warnings: _WarningLog) -> None:
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
            **({} if export.is_parquet else {"line": 1}),
        )

    header = None if export.is_parquet else 1
    for name in export.columns:
        if name not in FOCUS_COLUMNS and not name.startswith(CUSTOM_COLUMN_PREFIX):
            warnings.add(
                "column", header,
                f"column {name!r} is not a FOCUS 1.0 to 1.2 column and lacks the x_ prefix of "
                "custom columns; it only counts towards the row fingerprint",
                "columns outside FOCUS",
            )
    for name in OPTIONAL_COLUMNS:
        if name not in present:
            logger.info("%s has no %s column; the field is empty for every row", export.path, name)


def _write(store: Store, ingest: _FileIngest, batch_id: str, started: datetime) -> UpsertCounts:
    """Upsert every record and the batch row in one transaction, rolled back on any error."""
    origin = str(ingest.export.path)
    try:
        with store.transaction() as session:
            counts = upsert_facts(session, ingest.records(), batch_id)
            session.add(
                IngestBatch(
                    id=batch_id,
                    source=SOURCE,
                    origin=origin,
                    started_at=started,
                    finished_at=datetime.now(UTC),
                    rows_read=ingest.rows_read,
                    facts_inserted=counts.inserted,
                    facts_updated=counts.updated,
                    facts_unchanged=counts.unchanged,
                    warnings=list(ingest.warnings.render()),
                )
            )
    except SQLAlchemyError as exc:
        raise StoreError(
            f"writing {origin} to the database failed ({exc.__class__.__name__}: {exc.args[0]}); "
            "nothing from the file was committed"
        ) from exc
    return counts


def ingest_focus(store: Store, path: Path | str, settings: FocusSettings) -> FocusIngestReport:
    """Ingest one FOCUS export (CSV, ``.csv.gz`` or Parquet) in one transaction.

    Raises ``FocusFormatError`` for a missing mandatory column, an empty or non-numeric cost, an
    empty or unparsable charge period bound, an empty or malformed currency, or a malformed file.
    Nothing from the file is committed then. Problems that leave the row usable become warnings.
    """
    source = Path(path).resolve()
    started = datetime.now(UTC)
    clock = time.perf_counter()
    batch_id = str(uuid.uuid4())

    with _open_export(source) as export:
        ingest = _FileIngest(export, settings)
        _check_columns(export, settings.cost_column, ingest.warnings)
        counts = _write(store, ingest, batch_id, started)

    report = FocusIngestReport(
        source=SOURCE,
        origin=str(source),
        batch_id=batch_id,
        rows_read=ingest.rows_read,
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        warnings=ingest.warnings.render(),
        window_start=ingest.first_day,
        window_end=ingest.last_day,
        cost_column=settings.cost_column,
        duplicates=ingest.duplicates,
        warning_count=ingest.warnings.count,
        totals=dict(ingest.totals),
    )
    _log_report(report, time.perf_counter() - clock)
    return report


def _log_report(report: FocusIngestReport, seconds: float) -> None:
    logger.info(
        "ingested %s: %d rows read, %d inserted, %d updated, %d unchanged, %d duplicates in %.2f s",
        report.origin, report.rows_read, report.inserted, report.updated, report.unchanged,
        report.duplicates, seconds,
    )
    if report.warning_count:
        logger.warning(
            "%s: %d warnings about rows kept despite breaking the FOCUS specification; the ingest "
            "report lists them with line numbers",
            report.origin, report.warning_count,
        )

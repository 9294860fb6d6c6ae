"""Reading FOCUS exports: CSV, gzip-compressed CSV and Parquet, cell parsing and row fingerprints.

CSV goes through the ``csv`` module so that every message carries a physical line number, and
Parquet is read batch by batch with pyarrow. Cells are parsed by their FOCUS type, and a row's
fingerprint hashes every cell in a normalised form.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from costwarden.errors import FocusFormatError

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

PARQUET_BATCH_ROWS = 10_000
UTF8_SCAN_BYTES = 1 << 20
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"


class Invalid(NamedTuple):
    """A cell whose text does not parse as its column's FOCUS type."""

    text: str


@dataclass
class Export:
    """An open export: its column names and a stream of ``(line or row number, values)``.

    ``header_line`` is the CSV line of the header, after any blank lines, and None for Parquet.
    """

    path: Path
    columns: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    is_parquet: bool
    header_line: int | None = None

    def location(self, number: int) -> dict[str, int]:
        """Return the keyword that places an error: ``line`` for CSV, ``row`` for Parquet."""
        return {"row": number} if self.is_parquet else {"line": number}

    def header_location(self) -> dict[str, int]:
        """Return the keyword that places an error in the header: its CSV line, or nothing."""
        return {} if self.header_line is None else {"line": self.header_line}

    def label(self, number: int | None) -> str:
        if number is None:
            return "schema"
        return f"row {number}" if self.is_parquet else f"line {number}"


# Reading -----------------------------------------------------------------------------------------


@contextmanager
def open_export(path: Path) -> Iterator[Export]:
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


def _csv_export(path: Path, stream: IO[str]) -> Export:
    reader = csv.reader(stream)
    header = next(_csv_records(path, reader), None)
    if header is None:
        raise FocusFormatError(path, "the file is empty; expected a header row of FOCUS columns")
    header_line, names = header
    columns = _clean_header(path, names, header_line)
    rows = _csv_rows(path, reader, len(columns))
    return Export(path, columns, rows, is_parquet=False, header_line=header_line)


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
            raise _not_utf8_error(path) from exc
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


def _not_utf8_error(path: Path) -> FocusFormatError:
    """Build the error for a CSV that is not UTF-8, placed at the first invalid byte.

    The text layer decodes ahead of the CSV reader, so the reader's line number at the time of
    the error can be lines before the bad byte. The file is scanned again to find that byte.
    """
    found = _find_invalid_utf8(path)
    if found is None:
        return FocusFormatError(path, "the text is not UTF-8; re-export the file as UTF-8")
    line, offset, value = found
    return FocusFormatError(
        path,
        f"byte 0x{value:02X} at byte offset {offset} (counted from 0 in the uncompressed text) "
        "is not valid UTF-8; re-export the file as UTF-8",
        line=line,
    )


def _find_invalid_utf8(path: Path) -> tuple[int, int, int] | None:
    """Return the line, byte offset and value of the first byte that is not valid UTF-8.

    Lines end at LF, CRLF or a lone CR, as for the CSV reader. Returns None if every byte is valid.
    """
    with path.open("rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
    opener = gzip.open if compressed else open
    line, offset, carry, ended_with_cr = 1, 0, b"", False
    with opener(path, "rb") as stream:
        while True:
            chunk = stream.read(UTF8_SCAN_BYTES)
            data = carry + chunk
            if not data:
                return None
            valid, invalid = _utf8_prefix(data, at_end=not chunk)
            line += _count_line_breaks(data[:valid], ended_with_cr)
            if invalid:
                return line, offset + valid, data[valid]
            if valid:
                ended_with_cr = data[valid - 1 : valid] == b"\r"
            offset += valid
            carry = data[valid:]


def _utf8_prefix(data: bytes, *, at_end: bool) -> tuple[int, bool]:
    """Return the length of the valid UTF-8 prefix of ``data`` and whether an invalid byte ends it.

    A multi-byte character cut at the end of ``data`` is not invalid unless ``at_end``.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        truncated = exc.reason == "unexpected end of data"
        return exc.start, at_end or not truncated
    return len(data), False


def _count_line_breaks(data: bytes, after_cr: bool) -> int:
    breaks = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    if after_cr and data.startswith(b"\n"):
        breaks -= 1
    return breaks


def _parquet_export(path: Path) -> Export:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise FocusFormatError(path, f"not a readable Parquet file ({exc})") from exc
    columns = _clean_header(path, parquet.schema_arrow.names, None)
    return Export(path, columns, _parquet_rows(path, parquet), is_parquet=True)


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


def _clean_header(path: Path, names: list[str], line: int | None) -> list[str]:
    """Strip the column names and reject a name that appears twice; ``line`` is None for Parquet."""
    columns = [name.strip() for name in names]
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise FocusFormatError(
                path,
                "the column appears twice in the header; remove or rename one of them",
                column=name,
                line=line,
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


def _parse_decimal(raw: Any) -> Decimal | Invalid | None:
    value = _clean(raw)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return Invalid(str(value))
    try:
        number = Decimal(value) if isinstance(value, str | Decimal) else Decimal(str(value))
    except InvalidOperation:
        return Invalid(str(value))
    return number if number.is_finite() else Invalid(str(value))


def _parse_datetime(raw: Any) -> datetime | Invalid | None:
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
            return Invalid(value)
    else:
        return Invalid(str(value))

    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


def _parse_key_value(raw: Any) -> dict[str, Any] | Invalid | None:
    """Parse a FOCUS key-value cell: a JSON object in CSV, a map or a JSON string in Parquet."""
    value = _clean(raw)
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and all(isinstance(pair, tuple) for pair in value):
        return dict(value)
    if not isinstance(value, str):
        return Invalid(str(value))
    try:
        parsed = json.loads(value)
    except ValueError:
        return Invalid(value)
    return parsed if isinstance(parsed, dict) else Invalid(value)


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


def parser_for(column: str) -> Callable[[Any], Any]:
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
    if isinstance(value, Invalid):
        return value.text
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def fingerprint(columns: list[str], cells: dict[str, Any]) -> bytes:
    pairs = [[name, _canonical(cells[name])] for name in columns]
    payload = json.dumps(
        pairs, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(payload.encode()).digest()


def tag_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

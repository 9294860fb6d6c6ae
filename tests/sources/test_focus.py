import csv
import gzip
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from costwarden.config import FocusSettings
from costwarden.domain.cost import CostRecord, quantize_money
from costwarden.errors import FocusFormatError
from costwarden.sources import focus_reader
from costwarden.sources.focus import ingest_focus, ingest_focus_files
from costwarden.store import Store, upsert_facts
from costwarden.store.tables import CostFact, IngestBatch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "focus"
SAMPLE = FIXTURES / "focus_sample.csv"
KUBERNETES = FIXTURES / "focus_1_2_kubernetes.csv"
SPEC_EXAMPLE = FIXTURES / "commitment_discount_usage_scenario_4.csv"

ROUNDING_SLACK = Decimal("5e-11")
"""Largest change per row from rounding amounts to the store's 10 decimal places."""


# Helpers that read the files with the csv module, independently of the code under test.


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8-sig") as stream:
        rows = list(csv.reader(stream))
    return rows[0], rows[1:]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _column_sum(path: Path, column: str) -> Decimal:
    header, rows = _read(path)
    index = header.index(column)
    return sum((Decimal(row[index]) for row in rows), Decimal(0))


def _facts(store: Store) -> list[CostFact]:
    with store.transaction() as session:
        return list(session.scalars(select(CostFact).order_by(CostFact.period_start, CostFact.id)))


def _fact_count(store: Store) -> int:
    with store.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(CostFact)))


def _batches(store: Store) -> list[IngestBatch]:
    with store.transaction() as session:
        return list(session.scalars(select(IngestBatch)))


def _stored_total(store: Store) -> Decimal:
    return sum((fact.amount for fact in _facts(store)), Decimal(0))


def _enlarged_sample(tmp_path: Path, copies: int = 3) -> tuple[list[str], list[list[str]]]:
    """Return the sample repeated ``copies`` times with distinct Id values, so no row repeats."""
    header, rows = _read(SAMPLE)
    id_index = header.index("Id")
    enlarged = []
    for copy in range(copies):
        for row in rows:
            changed = list(row)
            changed[id_index] = f"{copy}-{row[id_index]}"
            enlarged.append(changed)
    return header, enlarged


# The shared FOCUS 1.0 sample.


def test_sample_ingests(store):
    report = ingest_focus(store, SAMPLE, FocusSettings())

    expected = _column_sum(SAMPLE, "EffectiveCost")
    stored = _stored_total(store)
    assert report.rows_read == 1000
    assert report.inserted == 1000
    assert report.updated == 0
    assert report.unchanged == 0
    assert _fact_count(store) == 1000
    assert abs(stored - expected) <= ROUNDING_SLACK * 1000
    assert quantize_money(stored) == quantize_money(expected)
    assert report.totals == {"USD": stored}
    assert report.window_start == date(2024, 9, 1)
    assert report.window_end == date(2024, 9, 30)


def test_sample_facts_mapped(sqlite_store):
    ingest_focus(sqlite_store, SAMPLE, FocusSettings())

    facts = _facts(sqlite_store)
    assert {fact.source for fact in facts} == {"focus"}
    assert {fact.grain for fact in facts} == {"resource"}
    assert {fact.currency for fact in facts} == {"USD"}
    assert {fact.cloud for fact in facts} == {"aws", "azure", "oracle"}
    assert all(fact.period_start.tzinfo is not None for fact in facts)
    assert all(fact.day == fact.period_start.date() for fact in facts)
    sqs = [fact for fact in facts if fact.resource_id and ":sqs:" in fact.resource_id]
    assert sqs, "the sample has SQS rows"
    assert sqs[0].service == "Amazon Simple Queue Service"
    assert {fact.region for fact in facts} >= {"us-west-2", "us-east-1", "eastus"}


def test_sample_warnings(sqlite_store):
    report = ingest_focus(sqlite_store, SAMPLE, FocusSettings())

    assert report.warning_count == 13
    assert report.warnings[0].startswith("line 1: column 'Id' is not a FOCUS")
    negative = [text for text in report.warnings if "is negative" in text]
    assert [text.split(":")[0] for text in negative] == [
        "line 956",
        "line 961",
        "line 963",
        "line 964",
        "line 965",
    ]
    assert report.warnings[-1].startswith("7 more rows with a negative cost")
    assert "line 459" not in " ".join(report.warnings), "line 459 is a credit"
    [batch] = _batches(sqlite_store)
    assert batch.source == "focus"
    assert batch.origin == str(SAMPLE.resolve())
    assert batch.rows_read == 1000
    assert batch.facts_inserted == 1000
    assert batch.warnings == list(report.warnings)
    assert batch.id == report.batch_id


@pytest.mark.parametrize("column", ["BilledCost", "ListCost"])
def test_cost_column_selects_amount(store, column):
    report = ingest_focus(store, SAMPLE, FocusSettings(cost_column=column))

    expected = _column_sum(SAMPLE, column)
    stored = _stored_total(store)
    assert report.cost_column == column
    assert abs(stored - expected) <= ROUNDING_SLACK * 1000
    assert quantize_money(stored) == quantize_money(expected)
    assert quantize_money(stored) != quantize_money(_column_sum(SAMPLE, "EffectiveCost"))


def test_contracted_cost_column(store):
    report = ingest_focus(store, KUBERNETES, FocusSettings(cost_column="ContractedCost"))

    expected = _column_sum(KUBERNETES, "ContractedCost")
    assert report.cost_column == "ContractedCost"
    assert _stored_total(store) == expected
    assert report.totals == {"USD": expected}
    assert expected != _column_sum(KUBERNETES, "EffectiveCost")


def test_contracted_cost_null_in_sample(sqlite_store):
    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(sqlite_store, SAMPLE, FocusSettings(cost_column="ContractedCost"))

    assert caught.value.line == 927
    assert caught.value.column == "ContractedCost"
    assert "the cost is empty" in str(caught.value)
    assert _fact_count(sqlite_store) == 0


def test_switching_cost_column_updates_facts(sqlite_store):
    header, rows = _read(SAMPLE)
    effective, billed = header.index("EffectiveCost"), header.index("BilledCost")
    differing = sum(1 for row in rows if Decimal(row[effective]) != Decimal(row[billed]))

    ingest_focus(sqlite_store, SAMPLE, FocusSettings())
    report = ingest_focus(sqlite_store, SAMPLE, FocusSettings(cost_column="BilledCost"))

    assert report.inserted == 0
    assert report.updated == differing
    assert report.unchanged == 1000 - differing
    assert _fact_count(sqlite_store) == 1000
    assert quantize_money(_stored_total(sqlite_store)) == quantize_money(
        _column_sum(SAMPLE, "BilledCost")
    )


def test_reingest_changes_nothing(store):
    first = ingest_focus(store, SAMPLE, FocusSettings())
    facts_before = {(fact.fact_key, fact.amount, fact.batch_id) for fact in _facts(store)}

    second = ingest_focus(store, SAMPLE, FocusSettings())

    assert second.inserted == 0
    assert second.updated == 0
    assert second.unchanged == 1000
    assert second.batch_id != first.batch_id
    assert {(fact.fact_key, fact.amount, fact.batch_id) for fact in _facts(store)} == facts_before
    assert len(_batches(store)) == 2


# Other formats.


def test_gzip_csv_same_totals(sqlite_store, tmp_path):
    compressed = tmp_path / "export.csv.gz"
    compressed.write_bytes(gzip.compress(SAMPLE.read_bytes()))

    report = ingest_focus(sqlite_store, compressed, FocusSettings())

    assert report.rows_read == 1000
    assert report.totals == {"USD": _stored_total(sqlite_store)}
    assert quantize_money(report.totals["USD"]) == quantize_money(
        _column_sum(SAMPLE, "EffectiveCost")
    )


def test_parquet_round_trip(store, tmp_path):
    parquet = tmp_path / "export.parquet"
    pq.write_table(pa_csv.read_csv(SAMPLE), parquet)
    csv_total = _column_sum(SAMPLE, "EffectiveCost")

    report = ingest_focus(store, parquet, FocusSettings())

    assert report.rows_read == 1000
    assert report.inserted == 1000
    assert abs(report.totals["USD"] - csv_total) <= ROUNDING_SLACK * 1000
    assert report.warnings[0].startswith("schema: column 'Id'")
    assert report.warnings[1].startswith("row 955: EffectiveCost")

    again = ingest_focus(store, SAMPLE, FocusSettings())
    assert again.totals == report.totals
    assert again.unchanged == 1000, "the CSV rows have the fingerprints of their Parquet copies"
    assert _fact_count(store) == 1000


def test_parquet_timestamps_and_map_tags(sqlite_store, tmp_path):
    start = datetime(2026, 11, 1, 10, tzinfo=UTC)
    table = pa.table(
        {
            "ChargePeriodStart": pa.array([start], pa.timestamp("ns", tz="UTC")),
            "ChargePeriodEnd": pa.array([start.replace(hour=11)], pa.timestamp("ns", tz="UTC")),
            "EffectiveCost": pa.array([Decimal("1.25")], pa.decimal128(12, 4)),
            "BillingCurrency": ["EUR"],
            "ProviderName": ["Amazon Web Services"],
            "ServiceName": ["Amazon Elastic Kubernetes Service"],
            "Tags": pa.array(
                [[("eks:cluster-name", "prod"), ("namespace", "web")]],
                pa.map_(pa.string(), pa.string()),
            ),
        }
    )
    parquet = tmp_path / "typed.parquet"
    pq.write_table(table, parquet)

    report = ingest_focus(sqlite_store, parquet, FocusSettings())

    [fact] = _facts(sqlite_store)
    assert report.warnings == ()
    assert fact.period_start == start
    assert fact.amount == Decimal("1.25")
    assert fact.currency == "EUR"
    assert fact.cloud == "aws"
    assert fact.cluster_name == "prod"
    assert fact.namespace == "web"
    assert fact.resource_id is None


def test_parquet_bad_cost_names_row(sqlite_store, tmp_path):
    table = pa.table(
        {
            "ChargePeriodStart": ["2026-11-01T00:00:00Z"] * 3,
            "ChargePeriodEnd": ["2026-11-01T01:00:00Z"] * 3,
            "EffectiveCost": ["1.0", "2.0", "n/a"],
            "BillingCurrency": ["USD"] * 3,
            "ProviderName": ["AWS"] * 3,
            "ServiceName": ["Amazon S3"] * 3,
            "ResourceId": ["a", "b", "c"],
        }
    )
    parquet = tmp_path / "bad.parquet"
    pq.write_table(table, parquet)

    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(sqlite_store, parquet, FocusSettings())

    assert caught.value.row == 3
    assert caught.value.line is None
    assert caught.value.column == "EffectiveCost"
    assert caught.value.value == "n/a"
    assert "row 3" in str(caught.value)
    assert _fact_count(sqlite_store) == 0


# FOCUS 1.2 and Kubernetes tags.


def test_focus_1_2_default_tag_keys(sqlite_store):
    report = ingest_focus(sqlite_store, KUBERNETES, FocusSettings())

    facts = _facts(sqlite_store)
    assert report.warnings == (), "credits, corrections and x_ columns are valid FOCUS"
    assert report.rows_read == 7
    assert len(facts) == 7
    by_resource = {fact.resource_id: fact for fact in facts if fact.resource_id}
    ec2 = by_resource["i-0a1b2c3d4e5f60719"]
    assert (ec2.cloud, ec2.cluster_name, ec2.namespace) == ("aws", "prod-eu", None)
    aks = next(fact for fact in facts if fact.cloud == "azure")
    assert (aks.cluster_name, aks.namespace) == ("aks-west", "checkout")
    gke = next(fact for fact in facts if fact.cloud == "gcp")
    assert (gke.cluster_name, gke.namespace, gke.account_id) == (
        "gke-analytics",
        "etl",
        "acme-analytics",
    )
    assert gke.period_start == datetime(2026, 11, 2, tzinfo=UTC)
    assert quantize_money(_stored_total(sqlite_store)) == quantize_money(
        _column_sum(KUBERNETES, "EffectiveCost")
    )


def test_custom_tag_keys_first_match_wins(sqlite_store):
    settings = FocusSettings(
        cluster_tag_keys=["team", "eks:cluster-name"], namespace_tag_keys=["k8s-namespace"]
    )

    ingest_focus(sqlite_store, KUBERNETES, settings)

    by_resource = {fact.resource_id: fact for fact in _facts(sqlite_store) if fact.resource_id}
    assert by_resource["i-0a1b2c3d4e5f60719"].cluster_name == "search"
    first = [fact for fact in _facts(sqlite_store) if fact.resource_id == "i-0a1b2c3d4e5f60718"]
    assert {fact.cluster_name for fact in first} == {"payments", "prod-eu"}
    assert {fact.namespace for fact in first} == {"payments", None}
    aks = next(fact for fact in _facts(sqlite_store) if fact.cloud == "azure")
    assert aks.cluster_name is None
    assert aks.namespace is None
    assert aks.tags["aks-managed-cluster-name"] == "aks-west"


def test_null_tags_and_missing_optional_columns(sqlite_store, tmp_path):
    header, rows = _read(KUBERNETES)
    keep = [
        index
        for index, name in enumerate(header)
        if name not in ("Tags", "RegionId", "SubAccountId")
    ]
    trimmed = _write(
        tmp_path / "trimmed.csv",
        [header[i] for i in keep],
        [[row[i] for i in keep] for row in rows],
    )

    report = ingest_focus(sqlite_store, trimmed, FocusSettings())

    facts = _facts(sqlite_store)
    assert report.inserted == 7
    assert all(fact.tags == {} for fact in facts)
    assert all(fact.region is None and fact.account_id is None for fact in facts)
    assert all(fact.cluster_name is None for fact in facts)


# Rows kept with a warning.


def _one_row_variants(tmp_path: Path, changes: list[dict[str, str]]) -> Path:
    """Write the first row of the FOCUS 1.2 fixture once per change, each with a distinct id."""
    header, rows = _read(KUBERNETES)
    out = []
    for number, change in enumerate(changes):
        row = dict(zip(header, rows[0], strict=True))
        row["ResourceId"] = f"i-{number}"
        row.update(change)
        out.append([row[name] for name in header])
    return _write(tmp_path / "variants.csv", header, out)


def test_spec_violations_kept_with_warnings(sqlite_store, tmp_path):
    path = _one_row_variants(
        tmp_path,
        [
            {},
            {"EffectiveCost": "-2.50"},
            {"ChargePeriodEnd": "2026-10-31T23:00:00Z"},
            {"BillingCurrency": "XYZ"},
            {"BillingCurrency": "eur"},
            {"Tags": "[1, 2]"},
            {"ChargePeriodStart": "2026-11-01T02:00:00+02:00"},
            {"ServiceName": "S" * 300},
        ],
    )

    report = ingest_focus(sqlite_store, path, FocusSettings())

    text = "\n".join(report.warnings)
    assert report.inserted == 8
    assert report.warning_count == 7
    assert "line 3: EffectiveCost -2.50 is negative on a Usage charge" in text
    assert (
        "line 4: ChargePeriodEnd 2026-10-31T23:00:00+00:00 is not after ChargePeriodStart" in text
    )
    assert "line 5: BillingCurrency XYZ is not an ISO 4217 code" in text
    assert "line 6: BillingCurrency eur is not upper case; stored as EUR" in text
    assert "line 7: Tags is not a JSON object" in text
    assert "line 8: ChargePeriodStart 2026-11-01T02:00:00+02:00 is not in UTC" in text
    assert "line 9: ServiceName is 300 characters" in text
    facts = {fact.resource_id: fact for fact in _facts(sqlite_store)}
    assert facts["i-4"].currency == "EUR"
    assert facts["i-5"].tags == {}
    assert facts["i-6"].period_start == datetime(2026, 11, 1, 0, tzinfo=UTC)
    assert len(facts["i-7"].service) == 255


def test_duplicate_row_kept_once(store, tmp_path):
    header, rows = _read(KUBERNETES)
    path = _write(tmp_path / "twice.csv", header, [rows[0], rows[1], rows[0]])

    report = ingest_focus(store, path, FocusSettings())

    assert report.rows_read == 3
    assert report.duplicates == 1
    assert report.inserted == 2
    assert report.warnings == (
        "line 4: repeats line 2 exactly; the repeat was skipped as the same charge exported twice",
    )
    assert _fact_count(store) == 2


def test_repeated_warnings_are_summarised(sqlite_store, tmp_path):
    path = _one_row_variants(tmp_path, [{"EffectiveCost": f"-{n}.00"} for n in range(1, 21)])

    report = ingest_focus(sqlite_store, path, FocusSettings())

    assert report.warning_count == 20
    assert len(report.warnings) == 6
    assert report.warnings[4].startswith("line 6: ")
    assert report.warnings[5].startswith("15 more rows with a negative cost")
    assert report.warnings[5].endswith("(not listed)")


def test_one_unlisted_warning_is_singular(sqlite_store, tmp_path):
    path = _one_row_variants(tmp_path, [{"EffectiveCost": f"-{n}.00"} for n in range(1, 7)])

    report = ingest_focus(sqlite_store, path, FocusSettings())

    assert report.warning_count == 6
    assert report.warnings[5] == (
        "1 more row with a negative cost outside credits, adjustments and corrections (not listed)"
    )


# Fatal errors: nothing from the file is committed.


@pytest.mark.parametrize(
    ("column", "bad", "reported", "message"),
    [
        ("EffectiveCost", "12,50", "12,50", "not a number"),
        ("EffectiveCost", "NULL", None, "the cost is empty"),
        ("ChargePeriodStart", "2024-09-31 25:00:00", "2024-09-31 25:00:00", "not a date and time"),
        ("ChargePeriodEnd", "", None, "the charge period bound is empty"),
        ("BillingCurrency", "", None, "the currency is empty"),
        ("BillingCurrency", "US$", "US$", "not a three-letter ISO 4217 currency code"),
    ],
)
def test_bad_cell_rolls_back_file(store, tmp_path, column, bad, reported, message):
    ingest_focus(store, KUBERNETES, FocusSettings())
    header, rows = _enlarged_sample(tmp_path)
    broken_line = 2500
    rows[broken_line - 2][header.index(column)] = bad
    path = _write(tmp_path / "broken.csv", header, rows)

    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(store, path, FocusSettings())

    error = caught.value
    assert error.line == broken_line
    assert error.column == column
    assert error.value == reported
    assert message in str(error)
    assert str(path.resolve()) in str(error)
    assert _fact_count(store) == 7, "only the facts of the earlier file remain"
    assert len(_batches(store)) == 1


def test_missing_column_rolls_back(store, tmp_path):
    ingest_focus(store, KUBERNETES, FocusSettings())
    header, rows = _read(SAMPLE)
    drop = header.index("BillingCurrency")
    path = _write(
        tmp_path / "no_currency.csv",
        header[:drop] + header[drop + 1 :],
        [row[:drop] + row[drop + 1 :] for row in rows],
    )

    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(store, path, FocusSettings())

    assert caught.value.column == "BillingCurrency"
    assert caught.value.line == 1
    assert "missing required FOCUS column(s) BillingCurrency;" in str(caught.value)
    assert _fact_count(store) == 7


@pytest.mark.parametrize(
    ("rename", "column", "message"),
    [
        ({"BillingCurrency": "Currency"}, "BillingCurrency", "missing required FOCUS column"),
        ({"ListCost": "EffectiveCost"}, "EffectiveCost", "the column appears twice"),
    ],
)
def test_header_error_after_blank_lines(sqlite_store, tmp_path, rename, column, message):
    header, rows = _read(KUBERNETES)
    header = [rename.get(name, name) for name in header]
    path = _write(tmp_path / "late_header.csv", header, rows)
    path.write_text("\n\n" + path.read_text())

    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(sqlite_store, path, FocusSettings())

    assert caught.value.line == 3
    assert caught.value.column == column
    assert message in str(caught.value)


def test_missing_selected_cost_column(sqlite_store, tmp_path):
    header, rows = _read(KUBERNETES)
    drop = header.index("ListCost")
    path = _write(
        tmp_path / "no_list.csv",
        header[:drop] + header[drop + 1 :],
        [row[:drop] + row[drop + 1 :] for row in rows],
    )

    ingest_focus(sqlite_store, path, FocusSettings(cost_column="EffectiveCost"))
    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(sqlite_store, path, FocusSettings(cost_column="ListCost"))

    assert caught.value.column == "ListCost"


def test_spec_example_lacks_mandatory_columns(sqlite_store):
    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(sqlite_store, SPEC_EXAMPLE, FocusSettings())

    assert caught.value.column == "BillingCurrency"
    assert "BillingCurrency, ProviderName, ServiceName" in str(caught.value)


def test_column_name_case_hint(sqlite_store, tmp_path):
    header, rows = _read(KUBERNETES)
    header[header.index("ChargePeriodStart")] = "chargeperiodstart"
    path = _write(tmp_path / "lower.csv", header, rows)

    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(sqlite_store, path, FocusSettings())

    assert "chargeperiodstart should be spelled ChargePeriodStart" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"", None, "the file is empty"),
        (b"A,A\n1,2\n", 1, "the column appears twice"),
        (None, 3, "the row has 30 fields but the header has 31"),
        (b"\x1f\x8b\x08\x00garbage", 1, "corrupt or truncated"),
    ],
)
def test_malformed_file(sqlite_store, tmp_path, content, line, message):
    path = tmp_path / "malformed.csv"
    if content is None:
        text = KUBERNETES.read_text().splitlines()
        text[2] = text[2].rsplit(",", 1)[0]
        path.write_text("\n".join(text) + "\n")
    else:
        path.write_bytes(content)

    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(sqlite_store, path, FocusSettings())

    assert caught.value.line == line
    assert message in str(caught.value)
    assert _fact_count(sqlite_store) == 0


def _latin1_copy(tmp_path: Path, line: int, newline: str = "\n") -> tuple[Path, int]:
    """Write the enlarged sample with one Latin-1 byte on ``line``; return the path and offset.

    The file is over 2 MB, so the bad byte lies beyond the first block that the decoder reads.
    """
    header, rows = _enlarged_sample(tmp_path)
    rows[line - 2][header.index("ChargeDescription")] = "caf\u00e9"
    text = _write(tmp_path / "utf8.csv", header, rows).read_text(encoding="utf-8")
    data = newline.join(text.split("\r\n")).encode("latin-1")
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    return path, data.index(b"\xe9")


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_not_utf8_names_line_and_offset(sqlite_store, tmp_path, newline):
    path, offset = _latin1_copy(tmp_path, 2500, newline)

    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(sqlite_store, path, FocusSettings())

    assert caught.value.line == 2500
    assert f"byte 0xE9 at byte offset {offset} " in str(caught.value)
    assert "re-export the file as UTF-8" in str(caught.value)
    assert _fact_count(sqlite_store) == 0


def test_not_utf8_in_gzip(sqlite_store, tmp_path):
    path, offset = _latin1_copy(tmp_path, 1500)
    compressed = tmp_path / "latin1.csv.gz"
    compressed.write_bytes(gzip.compress(path.read_bytes()))

    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(sqlite_store, compressed, FocusSettings())

    assert caught.value.line == 1500
    assert f"byte offset {offset} " in str(caught.value)


def test_not_utf8_after_split_characters(sqlite_store, tmp_path, monkeypatch):
    """Characters cut by the scan's block boundaries are valid, and the lone 0xFF byte is not."""
    monkeypatch.setattr(focus_reader, "UTF8_SCAN_BYTES", 5)
    header, rows = _read(KUBERNETES)
    rows[0][header.index("ChargeDescription")] = "\u20ac \u00e9 \U0001f600 " * 20
    rows[3][header.index("ChargeDescription")] = "\x00"
    data = _write(tmp_path / "mixed.csv", header, rows).read_bytes().replace(b"\x00", b"\xff")
    path = tmp_path / "mixed_bad.csv"
    path.write_bytes(data)
    offset = data.index(b"\xff")

    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(sqlite_store, path, FocusSettings())

    assert caught.value.line == 5
    assert f"byte 0xFF at byte offset {offset} " in str(caught.value)


def test_missing_file(sqlite_store, tmp_path):
    with pytest.raises(FocusFormatError, match="file not found"):
        ingest_focus(sqlite_store, tmp_path / "absent.csv", FocusSettings())


# Restated exports.


def _restate(
    tmp_path: Path, name: str, rows: list[list[str]], header: list[str], change_if: Any
) -> Path:
    """Write ``rows`` with one cent added to EffectiveCost wherever ``change_if(row)`` holds."""
    index = header.index("EffectiveCost")
    out = []
    for row in rows:
        changed = list(row)
        if change_if(dict(zip(header, row, strict=True))):
            changed[index] = str(Decimal(row[index]) + Decimal("0.01"))
        out.append(changed)
    return _write(tmp_path / name, header, out)


def _day(row: dict[str, str]) -> str:
    return row["ChargePeriodStart"][:10]


def _fact_state(store: Store) -> set[tuple[str, Decimal, str]]:
    return {(fact.fact_key, fact.amount, fact.batch_id) for fact in _facts(store)}


def test_replace_keeps_only_restated_rows(store, tmp_path):
    ingest_focus(store, SAMPLE, FocusSettings())
    header, rows = _read(SAMPLE)
    kept_rows = rows[:-1]
    path = _restate(
        tmp_path, "restated.csv", kept_rows, header, lambda row: _day(row) <= "2024-09-10"
    )
    start = header.index("ChargePeriodStart")
    changed = sum(1 for row in kept_rows if row[start][:10] <= "2024-09-10")

    report = ingest_focus(store, path, FocusSettings(), replace=True)

    assert report.replace is True
    assert report.replaced == changed + 1, "the changed rows and the dropped last row"
    assert report.inserted == changed
    assert report.unchanged == 999 - changed
    assert _fact_count(store) == 999
    assert _stored_total(store) == report.totals["USD"]
    assert quantize_money(_stored_total(store)) == quantize_money(
        _column_sum(path, "EffectiveCost")
    )
    assert not any("restated" in warning for warning in report.warnings)


def test_replace_with_same_file_deletes_nothing(sqlite_store):
    ingest_focus(sqlite_store, SAMPLE, FocusSettings())
    before = _fact_state(sqlite_store)

    report = ingest_focus(sqlite_store, SAMPLE, FocusSettings(), replace=True)

    assert report.replaced == 0
    assert report.unchanged == 1000
    assert _fact_state(sqlite_store) == before


def test_restated_without_replace_warns(store, tmp_path):
    ingest_focus(store, SAMPLE, FocusSettings())
    header, rows = _read(SAMPLE)
    path = _restate(tmp_path, "restated.csv", rows, header, lambda row: _day(row) <= "2024-09-20")
    start = header.index("ChargePeriodStart")
    changed = sum(1 for row in rows if row[start][:10] <= "2024-09-20")

    report = ingest_focus(store, path, FocusSettings())

    assert changed > 500
    assert report.replaced == 0
    assert report.warnings[0] == (
        f"the export looks restated: {changed} of its 1000 rows on the 30 charge days from "
        "2024-09-01 to 2024-09-30 have new fingerprints, although 1000 facts of the same "
        "providers and sub-accounts were already stored on those days. Corrected rows are now "
        "counted next to the rows they correct, so ingest the file again with --replace to keep "
        "only this export's rows for its providers, sub-accounts and charge days"
    )
    assert _fact_count(store) == 1000 + changed

    again = ingest_focus(store, path, FocusSettings(), replace=True)

    assert again.replaced == changed
    assert _fact_count(store) == 1000
    assert quantize_money(_stored_total(store)) == quantize_money(
        _column_sum(path, "EffectiveCost")
    )


def test_minor_restatement_not_warned(sqlite_store, tmp_path):
    ingest_focus(sqlite_store, SAMPLE, FocusSettings())
    header, rows = _read(SAMPLE)
    path = _restate(tmp_path, "restated.csv", rows, header, lambda row: _day(row) <= "2024-09-05")

    report = ingest_focus(sqlite_store, path, FocusSettings())

    assert 0 < report.inserted < 500
    assert not any("restated" in warning for warning in report.warnings)


def test_export_parts_not_taken_for_restatement(sqlite_store, tmp_path):
    header, rows = _read(SAMPLE)
    first = _write(tmp_path / "part-0.csv", header, rows[0::2])
    second = _write(tmp_path / "part-1.csv", header, rows[1::2])

    reports = list(ingest_focus_files(sqlite_store, [first, second], FocusSettings()))

    assert [report.inserted for report in reports] == [500, 500]
    assert not any("restated" in warning for report in reports for warning in report.warnings)


def _palette_fact(store: Store, day: date) -> None:
    record = CostRecord(
        source="palette",
        grain="namespace",
        period_start=datetime(day.year, day.month, day.day, tzinfo=UTC),
        period_end=datetime(day.year, day.month, day.day, 23, tzinfo=UTC),
        amount=Decimal("3.00"),
        currency="USD",
        cloud="aws",
        account_id="11353890204",
        cluster_uid="c-1",
        namespace="web",
    )
    with store.transaction() as session:
        upsert_facts(session, [record], "palette-batch")


def test_replace_leaves_other_scopes(store, tmp_path):
    ingest_focus(store, SAMPLE, FocusSettings())
    ingest_focus(store, KUBERNETES, FocusSettings())
    _palette_fact(store, date(2024, 9, 15))
    header, rows = _read(SAMPLE)
    named = [dict(zip(header, row, strict=True)) for row in rows]

    def restated(row: dict[str, str]) -> bool:
        return row["SubAccountId"] == "11353890204" and "2024-09-10" <= _day(row) <= "2024-09-20"

    subset = [row for row, cells in zip(rows, named, strict=True) if restated(cells)]
    path = _restate(tmp_path, "account.csv", subset, header, lambda row: True)
    before = {(fact.fact_key, fact.amount) for fact in _facts(store)}

    report = ingest_focus(store, path, FocusSettings(), replace=True)

    after = {(fact.fact_key, fact.amount) for fact in _facts(store)}
    removed = before - after
    assert report.window_start == date(2024, 9, 10)
    assert report.window_end == date(2024, 9, 20)
    assert report.replaced == len(subset)
    assert len(removed) == len(subset)
    assert report.inserted == len(subset)
    facts = _facts(store)
    assert len(facts) == 1000 + 7 + 1
    outside = [fact for fact in facts if fact.batch_id != report.batch_id]
    assert sum(1 for fact in outside if fact.source == "palette") == 1
    assert sum(1 for fact in outside if fact.day.year == 2026) == 7, "the FOCUS 1.2 facts"
    same_account = [
        fact for fact in outside if fact.source == "focus" and fact.account_id == "11353890204"
    ]
    expected_outside = sum(
        1 for cells in named if cells["SubAccountId"] == "11353890204" and not restated(cells)
    )
    assert len(same_account) == expected_outside
    assert all(not date(2024, 9, 10) <= fact.day <= date(2024, 9, 20) for fact in same_account)


def test_replace_null_account_is_own_value(sqlite_store, tmp_path):
    header, rows = _read(KUBERNETES)
    account = header.index("SubAccountId")
    resource = header.index("ResourceId")
    no_account = []
    for row in rows:
        copy = list(row)
        copy[account] = ""
        copy[resource] = f"{row[resource]}-shared"
        no_account.append(copy)
    ingest_focus(sqlite_store, KUBERNETES, FocusSettings())
    ingest_focus(sqlite_store, _write(tmp_path / "shared.csv", header, no_account), FocusSettings())
    aws_shared = [row for row in no_account if row[header.index("ProviderName")] == "AWS"]
    path = _restate(tmp_path, "shared_restated.csv", aws_shared, header, lambda row: True)

    report = ingest_focus(sqlite_store, path, FocusSettings(), replace=True)

    facts = _facts(sqlite_store)
    assert report.replaced == len(aws_shared)
    assert len(facts) == 14
    assert sum(1 for fact in facts if fact.account_id == "444455556666") == len(aws_shared)
    assert {fact.batch_id for fact in facts if fact.cloud == "aws" and fact.account_id is None} == {
        report.batch_id
    }


def test_replace_error_deletes_nothing(store, tmp_path):
    ingest_focus(store, SAMPLE, FocusSettings())
    before = _fact_state(store)
    header, rows = _read(SAMPLE)
    rows[-1][header.index("EffectiveCost")] = "n/a"
    path = _restate(tmp_path, "broken.csv", rows[:-1], header, lambda row: True)
    with path.open("a", newline="") as stream:
        csv.writer(stream).writerow(rows[-1])

    with pytest.raises(FocusFormatError) as caught:
        ingest_focus(store, path, FocusSettings(), replace=True)

    assert caught.value.line == 1001
    assert _fact_state(store) == before
    assert len(_batches(store)) == 1


def test_replace_parts_share_one_transaction(store, tmp_path):
    ingest_focus(store, SAMPLE, FocusSettings())
    before = _fact_state(store)
    header, rows = _read(SAMPLE)
    restated = _restate(tmp_path, "restated.csv", rows, header, lambda row: True)
    _, restated_rows = _read(restated)
    first = _write(tmp_path / "part-0.csv", header, restated_rows[0::2])
    second = _write(tmp_path / "part-1.csv", header, restated_rows[1::2])
    broken_rows = [list(row) for row in restated_rows[1::2]]
    broken_rows[-1][header.index("ChargePeriodStart")] = "yesterday"
    broken = _write(tmp_path / "part-1-broken.csv", header, broken_rows)

    with pytest.raises(FocusFormatError):
        list(ingest_focus_files(store, [first, broken], FocusSettings(), replace=True))

    assert _fact_state(store) == before
    reports = list(ingest_focus_files(store, [first, second], FocusSettings(), replace=True))

    assert [report.inserted for report in reports] == [500, 500]
    assert sum(report.replaced for report in reports) == 1000
    assert _fact_count(store) == 1000
    assert quantize_money(_stored_total(store)) == quantize_money(
        _column_sum(restated, "EffectiveCost")
    )

"""Read a budget import: the budget file (YAML or JSON) or a CSV table, one budget per row.

CSV columns (the header is row 1; an empty cell leaves the field unset):

- ``name`` and ``amount``: required.
- ``currency``, ``period``: ISO 4217 code (default USD); weekly, monthly (default), quarterly,
  yearly, or a custom range ``2026-01-01..2026-03-31`` (both days inclusive).
- ``cluster``, ``project``, ``namespace``, ``labels``: the scope; ``labels`` is a Kubernetes
  label selector such as ``team=core,env in (prod)``.
- ``thresholds``: ``;``-separated ``TYPE:PERCENT[@PROBABILITY][:SEVERITY]``, for example
  ``actual:80;forecast:100@0.7:critical``. Empty: the budget file's default thresholds.
- optional ``timezone``, ``owner``, ``description``, ``source`` (palette or focus).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from costwarden.budgets.loader import parse_budget_spec, parse_budget_specs
from costwarden.errors import BudgetFileError, ImportRowsError

REQUIRED_COLUMNS = ("name", "amount")
CSV_COLUMNS = (
    "name",
    "amount",
    "currency",
    "period",
    "cluster",
    "project",
    "namespace",
    "labels",
    "thresholds",
    "timezone",
    "owner",
    "description",
    "source",
)
SCOPE_COLUMNS = ("cluster", "project", "namespace", "labels")
MAX_PROBLEMS = 50

_THRESHOLD = re.compile(
    r"^(?P<type>actual|forecast):(?P<percent>\d+(?:\.\d+)?)"
    r"(?:@(?P<probability>0?\.\d+|1(?:\.0+)?))?(?::(?P<severity>info|warning|critical))?$"
)
_CUSTOM_PERIOD = re.compile(r"^(?P<start>\d{4}-\d{2}-\d{2})\.\.(?P<end>\d{4}-\d{2}-\d{2})$")


def specs_from_yaml(text: str, filename: str) -> list[dict[str, Any]]:
    """Return the canonical specs of a budget file; errors name the line, budget and field."""
    return [spec for _, spec in parse_budget_specs(text, filename)]


def specs_from_csv(text: str, filename: str) -> list[dict[str, Any]]:
    """Return the canonical specs of a budget CSV; raise ``ImportRowsError`` naming each problem."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    _check_header(reader.fieldnames, filename)

    specs: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    rows_of: dict[str, int] = {}
    for record in reader:
        row = reader.line_num
        spec, problem = _row_spec(record, row, filename)
        if problem is None:
            problem = _duplicate(spec, row, rows_of, filename)
        if problem is not None:
            problems.append(problem)
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        specs.append(spec)

    if problems:
        raise ImportRowsError(problems)
    if not specs:
        raise ImportRowsError(
            [_problem(filename, 2, None, None, None, "the CSV has no budget rows")]
        )
    return specs


def _check_header(fieldnames: Any, filename: str) -> None:
    columns = [name.strip() for name in fieldnames or ()]
    unknown = [name for name in columns if name not in CSV_COLUMNS]
    if unknown:
        message = f"unknown column {unknown[0]!r}; the columns are {', '.join(CSV_COLUMNS)}"
        raise ImportRowsError([_problem(filename, 1, None, unknown[0], unknown[0], message)])
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        message = f"missing column {missing[0]!r}; the header needs at least name and amount"
        raise ImportRowsError([_problem(filename, 1, None, missing[0], None, message)])


def _row_spec(
    record: dict[str, Any], row: int, filename: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    cells = {
        key.strip(): value.strip()
        for key, value in record.items()
        if key is not None and isinstance(value, str) and value.strip()
    }
    name = cells.get("name")
    if None in record:
        return {}, _problem(
            filename, row, name, None, None, "the row has more cells than the header"
        )

    spec: dict[str, Any] = {key: cells[key] for key in ("name", "amount") if key in cells}
    spec["scope"] = {key: cells[key] for key in SCOPE_COLUMNS if key in cells}
    for key in ("currency", "timezone", "owner", "description", "source"):
        if key in cells:
            spec[key] = cells[key]
    if "period" in cells:
        spec["period"] = period_spec(cells["period"])
    if "thresholds" in cells:
        try:
            spec["thresholds"] = _thresholds(cells["thresholds"])
        except ValueError as exc:
            return {}, _problem(filename, row, name, "thresholds", cells["thresholds"], str(exc))

    try:
        _, canonical = parse_budget_spec(spec, f"{filename}, row {row}")
    except BudgetFileError as exc:
        column = _column_of(exc.field)
        value = cells.get("period") if column == "period" else exc.value
        return {}, _problem(filename, row, name, column, value, str(exc), full=True)
    return canonical, None


def _duplicate(
    spec: dict[str, Any], row: int, rows_of: dict[str, int], filename: str
) -> dict[str, Any] | None:
    name = spec["name"]
    if name in rows_of:
        message = f"duplicate budget name; row {rows_of[name]} has it already"
        return _problem(filename, row, name, "name", name, message)
    rows_of[name] = row
    return None


def period_spec(text: str) -> Any:
    """Return a period name as is and ``START..END`` as ``{start, end}``."""
    match = _CUSTOM_PERIOD.match(text)
    if match is None:
        return text
    return {"start": match["start"], "end": match["end"]}


def _thresholds(text: str) -> list[dict[str, Any]]:
    thresholds = []
    for part in (item.strip() for item in text.split(";")):
        if not part:
            continue
        match = _THRESHOLD.match(part)
        if match is None:
            raise ValueError(
                f"threshold {part!r} is invalid; write TYPE:PERCENT[@PROBABILITY][:SEVERITY], "
                "for example actual:80 or forecast:100@0.7:critical"
            )
        threshold: dict[str, Any] = {"type": match["type"], "percent": match["percent"]}
        if match["probability"] is not None:
            threshold["probability"] = float(match["probability"])
        if match["severity"] is not None:
            threshold["severity"] = match["severity"]
        thresholds.append(threshold)
    return thresholds


def _column_of(field: str | None) -> str | None:
    """Map a field of the budget file (``scope.labels``, ``thresholds.0.percent``) to its column."""
    if field is None:
        return None
    head, _, rest = field.partition(".")
    if head == "scope" and rest:
        return rest.partition(".")[0]
    return head


def _problem(
    filename: str,
    row: int,
    budget: str | None,
    field: str | None,
    value: Any,
    message: str,
    *,
    full: bool = False,
) -> dict[str, Any]:
    if not full:
        where = f"{filename}, row {row}"
        if field is not None:
            where += f", column {field}"
        message = f"{where}: {message}"
    return {"row": row, "budget": budget, "field": field, "value": value, "message": message}

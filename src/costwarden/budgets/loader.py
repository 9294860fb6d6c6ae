"""Read and validate a budget file (YAML) into ``Budget`` objects.

Validation runs in two phases: a pydantic schema (unknown keys are rejected, so a typo such as
``threshold:`` for ``thresholds:`` fails loudly), then semantic checks (time zone, label selector,
custom period order, unique names). Every error names the file, the line and the budget.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from costwarden.domain.budget import Budget, Period, Scope, Threshold
from costwarden.domain.selector import parse_selector
from costwarden.errors import BudgetFileError

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScopeModel(_Strict):
    cluster: str | None = Field(None, description="Cluster name or uid.")
    project: str | None = Field(None, description="Project name or uid.")
    namespace: str | None = Field(
        None, description="Namespace; within `cluster` when set, else in every cluster."
    )
    labels: str | None = Field(
        None, description="Kubernetes-style selector over cluster and namespace labels."
    )
    provider: str | None = Field(None, description="Billing provider (FOCUS ProviderName).")
    account: str | None = Field(None, description="Billing sub-account (FOCUS SubAccountId).")
    service: str | None = Field(None, description="Billing service (FOCUS ServiceName).")


class CustomPeriodModel(_Strict):
    start: date
    end: date = Field(description="Last day of the period, inclusive.")


class ThresholdModel(_Strict):
    type: Literal["actual", "forecast"] = Field(description="Compare actual or forecast spend.")
    percent: Annotated[Decimal, Field(gt=0)] | None = Field(None, description="Percent of the amount.")
    amount: Annotated[Decimal, Field(gt=0)] | None = Field(None, description="Absolute amount.")
    probability: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description="Forecast only: minimum probability that the total reaches the limit."
    )
    severity: Literal["info", "warning", "critical"] = "warning"

    @model_validator(mode="after")
    def _one_level(self) -> ThresholdModel:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("set exactly one of 'percent' or 'amount'")
        if self.probability is not None and self.type != "forecast":
            raise ValueError("'probability' applies to forecast thresholds only")
        return self


def _check_period(value: Any) -> Any:
    if isinstance(value, str) and value not in ("weekly", "monthly", "quarterly", "yearly"):
        raise ValueError(
            f"unknown period {value!r}; use weekly, monthly, quarterly, yearly, "
            "or {start: YYYY-MM-DD, end: YYYY-MM-DD}"
        )
    if value is not None and not isinstance(value, str | dict):
        raise ValueError(f"expected a period name or {{start, end}}, not {type(value).__name__}")
    return value


class BudgetModel(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str | None = None
    owner: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    scope: ScopeModel
    amount: Annotated[Decimal, Field(gt=0)]
    currency: str | None = None
    period: Literal["weekly", "monthly", "quarterly", "yearly"] | CustomPeriodModel | None = None
    timezone: str | None = None
    source: Literal["palette", "focus"] | None = Field(
        None, description="Cost source; default Palette, or billing data where Palette has none."
    )
    _period = field_validator("period", mode="before")(_check_period)
    thresholds: list[ThresholdModel] = Field(
        default_factory=lambda: [
            ThresholdModel(type="actual", percent=Decimal(100)),
            ThresholdModel(type="forecast", percent=Decimal(100), probability=0.8),
        ],
        min_length=1,
        description="Default: actual spend reaches 100%, and a forecast that reaches 100% with "
        "probability 0.8 or more.",
    )


class DefaultsModel(_Strict):
    currency: str = "USD"
    period: Literal["weekly", "monthly", "quarterly", "yearly"] = "monthly"
    timezone: str = "UTC"


class BudgetFileModel(_Strict):
    version: Literal[1] = 1
    defaults: DefaultsModel = Field(default_factory=DefaultsModel)
    budgets: list[BudgetModel]


def load_budgets(path: Path) -> list[Budget]:
    """Read and validate the budget file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BudgetFileError(path, "file not found; check --budgets or budgets_file") from exc
    except IsADirectoryError as exc:
        raise BudgetFileError(path, "is a directory; pass the budget YAML file") from exc
    except UnicodeDecodeError as exc:
        line = text_line_of(path.read_bytes(), exc.start)
        raise BudgetFileError(path, f"line {line}: not UTF-8 text; save the file as UTF-8") from exc
    return parse_budgets(text, path)


def parse_budgets(text: str, path: Path | str = "<budgets>") -> list[Budget]:
    return [budget for budget, _ in parse_budget_specs(text, path)]


def parse_budget_specs(
    text: str, path: Path | str = "<budgets>"
) -> list[tuple[Budget, dict[str, Any]]]:
    """Validate a budget file and return each budget with its canonical spec.

    The spec is the budget's entry with the file's defaults filled in, as JSON-ready data, so it
    can be stored on its own and validated again by ``parse_budget_spec``.
    """
    data, lines = _parse_yaml(text, path)

    try:
        model = BudgetFileModel.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc, data, lines)
        first = problems[0]
        error = BudgetFileError(
            path, _describe(exc, data, lines), field=first["field"], value=first["value"]
        )
        error.budget = first["budget"]
        error.problems = problems
        raise error from exc

    results = []
    seen: set[str] = set()
    for index, entry in enumerate(model.budgets):
        where = f"line {lines.get(index, '?')}, budget {entry.name!r}"
        if entry.name in seen:
            raise BudgetFileError(path, f"{where}, field name: duplicate budget name; names must be unique")
        seen.add(entry.name)
        budget = _to_budget(entry, model.defaults, path, where)
        results.append((budget, canonical_spec(entry, model.defaults)))
    return results


def parse_budget_spec(spec: Any, path: Path | str = "<budget>") -> tuple[Budget, dict[str, Any]]:
    """Validate one budget written as an entry of the budget file's ``budgets`` list.

    Return the budget and its canonical spec. Missing currency, period and time zone take the
    budget file's built-in defaults (USD, monthly, UTC). Errors name the budget and the field.
    """
    if not isinstance(spec, dict):
        raise BudgetFileError(
            path, f"expected a budget as a mapping of fields, not {type(spec).__name__}"
        )
    data = {"budgets": [spec]}
    try:
        model = BudgetFileModel.model_validate(data)
    except ValidationError as exc:
        field, value = _first_problem(exc)
        error = BudgetFileError(path, _describe(exc, data, {}), field=field, value=value)
        error.budget = _budget_name(data, 0)
        raise error from exc

    entry = model.budgets[0]
    budget = _to_budget(entry, model.defaults, path, f"budget {entry.name!r}")
    return budget, canonical_spec(entry, model.defaults)


def canonical_spec(entry: BudgetModel, defaults: DefaultsModel) -> dict[str, Any]:
    """Return the entry as JSON-ready data with the defaults written out and unset fields left out.

    Amounts are strings, so no precision is lost in a JSON column.
    """
    spec = entry.model_dump(mode="json", exclude_none=True)
    spec["currency"] = (entry.currency or defaults.currency).upper()
    spec.setdefault("period", defaults.period)
    spec["timezone"] = entry.timezone or defaults.timezone
    return spec


def text_line_of(data: bytes, offset: int) -> int:
    """Return the 1-based line number of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key repeated in one mapping instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, path: Path | str) -> tuple[Any, dict[int, int]]:
    """Parse YAML and return the data plus the line number of each budget entry."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise BudgetFileError(path, f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise BudgetFileError(path, "expected a mapping with a 'budgets' list at the top level")

    lines: dict[int, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "budgets" and isinstance(value, yaml.SequenceNode):
                for index, item in enumerate(value.value):
                    lines[index] = item.start_mark.line + 1
    return data, lines


def _describe(exc: ValidationError, data: Any, lines: dict[int, int]) -> str:
    problems = [problem["message"] for problem in _problems(exc, data, lines)]
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems:\n  " + "\n  ".join(problems)


def _problems(exc: ValidationError, data: Any, lines: dict[int, int]) -> list[dict[str, Any]]:
    """Describe each validation error with its budget, field, value and message."""
    problems = []
    for error in exc.errors():
        location = list(error["loc"])
        prefix = ""
        name = None
        if len(location) >= 2 and location[0] == "budgets" and isinstance(location[1], int):
            index = location[1]
            name = _budget_name(data, index)
            prefix = f"budget {name!r}, "
            if lines:
                prefix = f"line {lines.get(index, '?')}, {prefix}"
            location = location[2:]
        field = ".".join(str(part) for part in location if not _is_union_tag(str(part)))
        value = error.get("input")
        received = ""
        if isinstance(value, dict | list) or error["type"] == "missing":
            value = None
        else:
            received = f" (got {value!r})"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "missing; this field is required"
        elif error["type"] == "extra_forbidden":
            message = "unknown field; check its spelling"
        problems.append(
            {
                "budget": name,
                "field": field or None,
                "value": value,
                "message": f"{prefix}field {field or '<entry>'}: {message}{received}",
            }
        )
    return problems


def _first_problem(exc: ValidationError) -> tuple[str | None, Any]:
    """Return the field path and input value of the first error in one budget's validation."""
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"][2:] if not _is_union_tag(str(part))]
    value = error.get("input")
    if isinstance(value, dict | list) or error["type"] == "missing":
        value = None
    return ".".join(location) or None, value


def _is_union_tag(part: str) -> bool:
    """Tell pydantic's names for union branches apart from field names in an error location."""
    return part.startswith(("function-", "literal[")) or part[:1].isupper()


def _budget_name(data: Any, index: int) -> str:
    try:
        return str(data["budgets"][index].get("name", f"#{index + 1}"))
    except (KeyError, IndexError, TypeError, AttributeError):
        return f"#{index + 1}"


def _to_budget(entry: BudgetModel, defaults: DefaultsModel, path: Path | str, where: str) -> Budget:
    def fail(message: str, field: str, value: object) -> BudgetFileError:
        message = f"{where}, field {field}: {message}"
        error = BudgetFileError(path, message, field=field, value=value)
        error.budget = entry.name
        return error

    currency = (entry.currency or defaults.currency).upper()
    if not _CURRENCY.match(currency):
        raise fail(f"{currency!r} is not an ISO 4217 code such as USD or EUR", "currency", currency)

    timezone = entry.timezone or defaults.timezone
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        message = f"unknown time zone {timezone!r}; use an IANA name"
        raise fail(message, "timezone", timezone) from exc

    period_spec = entry.period or defaults.period
    if isinstance(period_spec, CustomPeriodModel):
        if period_spec.end < period_spec.start:
            message = f"end {period_spec.end} is before start {period_spec.start}"
            raise fail(message, "period.end", str(period_spec.end))
        period = Period("custom", timezone, period_spec.start, period_spec.end)
    else:
        period = Period(period_spec, timezone)

    labels = ()
    if entry.scope.labels is not None:
        try:
            labels = parse_selector(entry.scope.labels)
        except ValueError as exc:
            raise fail(str(exc), "scope.labels", entry.scope.labels) from exc

    scope = Scope(
        cluster=entry.scope.cluster,
        project=entry.scope.project,
        namespace=entry.scope.namespace,
        selector=entry.scope.labels,
        labels=labels,
        provider=entry.scope.provider,
        account=entry.scope.account,
        service=entry.scope.service,
    )
    thresholds = tuple(
        Threshold(t.type, t.percent, t.amount, t.probability, t.severity) for t in entry.thresholds
    )
    return Budget(
        name=entry.name,
        scope=scope,
        amount=entry.amount,
        currency=currency,
        period=period,
        thresholds=thresholds,
        source=entry.source,
        description=entry.description,
        owner=entry.owner,
        labels=dict(entry.labels),
    )

"""Compile and evaluate policy conditions written in CEL (cel-python).

cel-python parses and evaluates but does not type-check, so ``compile_condition`` adds checks at
load time. Every variable, field, function and method must be known. A declared number field
must not be compared with a literal of the other number type, because CEL has no implicit
int/double conversion and ``pool.gpu > 0.5`` would fail on every evaluation.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, base_functions

from costwarden.policy.variables import SCALARS, VARIABLES, CelType

logger = logging.getLogger(__name__)

_MACROS = frozenset({"has", "dyn"})
_COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_FUNCTIONS = frozenset(name for name in base_functions if name[:1].isalpha()) | _MACROS
_METHODS = _FUNCTIONS | _COMPREHENSIONS
_WRAPPERS = frozenset(
    {
        "expr",
        "conditionalor",
        "conditionaland",
        "relation",
        "addition",
        "multiplication",
        "unary",
        "member",
        "primary",
        "paren_expr",
    }
)
_LITERAL_TYPES: dict[str, str] = {
    "INT_LIT": "int",
    "UINT_LIT": "uint",
    "FLOAT_LIT": "double",
    "STRING_LIT": "string",
    "MLSTRING_LIT": "string",
    "BOOL_LIT": "bool",
    "BYTES_LIT": "bytes",
}
_COMPARISONS = frozenset(
    {"relation_lt", "relation_le", "relation_gt", "relation_ge", "relation_eq", "relation_ne"}
)

_ENVIRONMENT = celpy.Environment()


class ConditionError(ValueError):
    """A condition that does not compile; the message gives the position and the reason."""


class ConditionEvalError(RuntimeError):
    """A condition that failed at run time or did not return a bool."""


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition; ``source`` is the CEL text as written."""

    source: str
    program: celpy.Runner

    def evaluate(self, activation: Mapping[str, Any]) -> bool:
        """Evaluate the condition; raise ``ConditionEvalError`` on an error or a non-bool result."""
        try:
            result = self.program.evaluate(dict(activation))
        except CELEvalError as exc:
            raise ConditionEvalError(_eval_message(exc)) from exc
        except (TypeError, ValueError, ArithmeticError, KeyError) as exc:
            raise ConditionEvalError(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(result, CELEvalError):
            raise ConditionEvalError(_eval_message(result))
        if not isinstance(result, celtypes.BoolType):
            raise ConditionEvalError(f"returned {_cel_type_name(result)}, not bool")
        return bool(result)


@functools.lru_cache(maxsize=1024)
def compile_condition(source: str) -> Condition:
    """Parse and check a condition; raise ``ConditionError`` listing every problem found.

    Compiled conditions are immutable, so equal sources share one.
    """
    try:
        tree = _ENVIRONMENT.compile(source)
    except CELParseError as exc:
        raise ConditionError(_parse_message(source, exc)) from exc

    problems = list(_check(tree))
    if problems:
        raise ConditionError("; ".join(dict.fromkeys(problems)))
    return Condition(source, _ENVIRONMENT.program(tree))


def _parse_message(source: str, error: CELParseError) -> str:
    line = getattr(error, "line", None)
    column = getattr(error, "column", None)
    if line is None or column is None:
        return f"invalid CEL: {error}"
    lines = source.splitlines() or [""]
    text = lines[min(line, len(lines)) - 1]
    where = f"line {line}, column {column}" if len(lines) > 1 else f"column {column}"
    return f"invalid CEL at {where}: the expression does not parse there ({text!r})"


def _check(tree: lark.Tree) -> Iterator[str]:
    bound = set(_bound_names(tree))
    variables = set(VARIABLES) | set(SCALARS)
    for node in tree.iter_subtrees():
        if node.data == "ident":
            name = str(node.children[0])
            if name not in variables and name not in bound and name not in _FUNCTIONS:
                known = ", ".join(sorted(variables))
                yield f"unknown variable {name!r}; the variables are {known}"
        elif node.data == "member_dot":
            yield from _check_field(node, bound)
        elif node.data == "ident_arg":
            name = str(node.children[0])
            if name not in _FUNCTIONS:
                yield f"unknown function {name}()"
        elif node.data == "member_dot_arg":
            name = str(node.children[1])
            if name not in _METHODS:
                yield f"unknown method .{name}()"
        elif node.data == "relation":
            yield from _check_comparison(node)


def _bound_names(tree: lark.Tree) -> Iterator[str]:
    """Yield the loop variables of comprehension macros such as ``list.exists(x, x > 1)``."""
    for node in tree.iter_subtrees():
        if node.data != "member_dot_arg" or str(node.children[1]) not in _COMPREHENSIONS:
            continue
        if len(node.children) < 3 or not isinstance(node.children[2], lark.Tree):
            continue
        first = node.children[2].children[0]
        name = _variable_of(first)
        if name is not None:
            yield name


def _variable_of(node: Any) -> str | None:
    """Return the identifier an expression consists of, or None when it is anything else."""
    while isinstance(node, lark.Tree) and node.data in _WRAPPERS and len(node.children) == 1:
        node = node.children[0]
    if isinstance(node, lark.Tree) and node.data == "ident":
        return str(node.children[0])
    return None


def _declared_field(node: lark.Tree, bound: set[str]) -> tuple[str, str] | None:
    """Return (variable, field) when ``node`` is ``variable.field`` on a declared variable."""
    if node.data != "member_dot":
        return None
    variable = _variable_of(node.children[0])
    if variable is None or variable not in VARIABLES or variable in bound:
        return None
    return variable, str(node.children[1])


def _check_field(node: lark.Tree, bound: set[str]) -> Iterator[str]:
    found = _declared_field(node, bound)
    if found is None:
        return
    variable, field = found
    fields = VARIABLES[variable].fields
    if field not in fields:
        yield (
            f"unknown field {variable}.{field}; the fields of {variable} are "
            f"{', '.join(sorted(fields))}"
        )


@dataclass(frozen=True, slots=True)
class _Operand:
    text: str
    type: str
    literal: bool


def _operand(node: Any) -> _Operand | None:
    """Describe a declared field or a literal operand; return None for anything else."""
    while isinstance(node, lark.Tree) and node.data in _WRAPPERS and len(node.children) == 1:
        node = node.children[0]
    if not isinstance(node, lark.Tree):
        return None
    if node.data == "literal":
        token = node.children[0]
        kind = _LITERAL_TYPES.get(getattr(token, "type", ""))
        return _Operand(str(token), kind, literal=True) if kind else None
    found = _declared_field(node, set())
    if found is None:
        return None
    variable, field = found
    declared = VARIABLES[variable].fields.get(field)
    if declared is None:
        return None
    return _Operand(f"{variable}.{field}", declared.type, literal=False)


def _check_comparison(node: lark.Tree) -> Iterator[str]:
    """Check ``a < b``, which lark builds as relation(relation_lt(a), b)."""
    children = [child for child in node.children if isinstance(child, lark.Tree)]
    if len(children) != 2 or children[0].data not in _COMPARISONS or not children[0].children:
        return
    left, right = _operand(children[0].children[0]), _operand(children[1])
    if left is None or right is None or left.type == right.type or left.literal == right.literal:
        return
    field, literal = (right, left) if left.literal else (left, right)
    if field.type in ("map", "list"):
        return
    yield (
        f"{field.text} is {_article(field.type)} and {literal.text} is {_article(literal.type)}; "
        f"CEL does not compare them, so write the literal as {_example(field.type)}"
    )


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


_EXAMPLES: dict[CelType | str, str] = {
    "int": "an integer such as 2",
    "double": "a number with a decimal point such as 100.0",
    "string": "a quoted string",
    "bool": "true or false",
    "timestamp": "timestamp('2025-01-31T00:00:00Z')",
    "duration": "duration('24h')",
}


def _example(kind: str) -> str:
    return _EXAMPLES.get(kind, f"a {kind} value")


_NESTED_ERROR = re.compile(r"CELEvalError\(\*\(['\"](.+?)['\"], <class .*?tree='(.+?)'\)")


def _eval_message(error: CELEvalError) -> str:
    """Describe a CEL evaluation error in one line, without the activation dump celpy adds."""
    if not error.args:
        return "evaluation failed"
    text = str(error.args[0])
    if text.startswith("undeclared reference"):
        return text.split(" (in activation", 1)[0]
    if text == "no such key" and len(error.args) > 2 and error.args[2]:
        return f"no such key {str(error.args[2][0])!r}"
    details = error.args[2] if len(error.args) > 2 and isinstance(error.args[2], tuple) else ()
    nested = _NESTED_ERROR.findall(" ".join(str(detail) for detail in details))
    if text.startswith("found no matching overload") and nested:
        return "; ".join(f"{message} ({tree})" for message, tree in nested)
    if text.startswith("found no matching overload"):
        return "operands of different types; " + text.split(" applied to ", 1)[-1][:200]
    return text[:300]


def _cel_type_name(value: Any) -> str:
    if value is None:
        return "null"
    return type(value).__name__.removesuffix("Type").lower()

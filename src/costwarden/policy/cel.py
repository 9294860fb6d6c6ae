"""Compile and evaluate policy conditions written in CEL (cel-python).

cel-python parses and evaluates but does not type-check, so ``compile_condition`` adds checks at
load time. Every variable, field, function and method must be known. A declared number field
must not be compared with a literal of the other number type, because CEL has no implicit
int/double conversion and ``pool.gpu > 0.5`` would fail on every evaluation. The result must be
a bool wherever its type can be told from the expression alone, and ``timestamp()`` and
``duration()`` of a string literal must parse.
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
    result = _result_type(tree)
    if result is not None and result != "bool":
        problems.append(
            f"the condition returns {result}, not bool; make it a comparison or a test such "
            "as pool.size + 1 > 3, pool.name == 'gpu' or has(pool.gpu)"
        )
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
            elif name in _PARSED_LITERALS:
                yield from _check_literal_argument(node, name)
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
        f"CEL does not compare them, so {_comparison_hint(field, literal)}"
    )


def _comparison_hint(field: _Operand, literal: _Operand) -> str:
    """Suggest how to compare an int field with a double literal and the other way round."""
    if field.type == "int" and literal.type == "double":
        number = float(literal.text)
        if number.is_integer():
            return f"write the literal as the integer {int(number)}"
        return (
            f"convert the field with double({field.text}), or compare with an integer such as "
            f"{int(number)} or {int(number) + 1}"
        )
    if field.type == "double" and literal.type in ("int", "uint"):
        return f"write the literal as {literal.text.rstrip('uU')}.0"
    return f"write the literal as {_example(field.type)}"


_PARSED_LITERALS: dict[str, str] = {
    "timestamp": "an RFC 3339 timestamp such as timestamp('2025-01-31T00:00:00Z')",
    "duration": "a duration in seconds, minutes or hours such as duration('24h') or "
    "duration('90m')",
}
_FUNCTION_TYPES: dict[str, str] = {
    "has": "bool",
    "size": "int",
    "int": "int",
    "uint": "uint",
    "double": "double",
    "string": "string",
    "bytes": "bytes",
    "timestamp": "timestamp",
    "duration": "duration",
    "matches": "bool",
}
_NEVER_BOOL: dict[str, str] = {
    "addition": "the result of + or -",
    "multiplication": "the result of *, / or %",
}


def _check_literal_argument(node: lark.Tree, name: str) -> Iterator[str]:
    """Evaluate ``timestamp('...')`` or ``duration('...')`` of one string literal now."""
    arguments = node.children[1] if len(node.children) > 1 else None
    if not isinstance(arguments, lark.Tree) or len(arguments.children) != 1:
        return
    argument = _operand(arguments.children[0])
    if argument is None or not argument.literal or argument.type != "string":
        return
    try:
        _ENVIRONMENT.program(_ENVIRONMENT.compile(f"{name}({argument.text})")).evaluate({})
    except CELEvalError as exc:
        yield (
            f"{name}({argument.text}) is invalid: {_eval_message(exc)}; write "
            f"{_PARSED_LITERALS[name]}"
        )


def _result_type(tree: lark.Tree) -> str | None:
    """Return the CEL type of the whole expression, or None when it depends on the values."""
    node: Any = tree
    while isinstance(node, lark.Tree):
        children = [child for child in node.children if isinstance(child, lark.Tree)]
        if node.data == "expr" and len(node.children) == 3:
            branches = {_result_type(branch) for branch in node.children[1:]}
            return branches.pop() if len(branches) == 1 else None
        if node.data in ("conditionalor", "conditionaland", "relation") and len(children) == 2:
            return "bool"
        if node.data in _NEVER_BOOL and len(children) == 2:
            return _operand_type(children) or _NEVER_BOOL[node.data]
        if node.data == "unary" and len(children) == 2:
            return "bool" if children[0].data == "unary_not" else "a negated number"
        if node.data in ("list_lit", "map_lit"):
            return node.data.removesuffix("_lit")
        if node.data == "ident_arg":
            return _FUNCTION_TYPES.get(str(node.children[0]))
        if node.data in ("literal", "member_dot"):
            operand = _operand(node)
            return operand.type if operand is not None else None
        if node.data not in _WRAPPERS or len(node.children) != 1:
            return None
        node = node.children[0]
    return None


def _operand_type(children: list[lark.Tree]) -> str | None:
    """Return the type of ``a + b`` (or ``*``) when ``b`` is a declared field or a literal."""
    right = _operand(children[1])
    if right is None or right.type in ("map", "list", "bool"):
        return None
    return right.type


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
    if text == "return error for overflow" and len(error.args) > 2:
        # celpy reports every exception a built-in function raises under this text; the cause,
        # such as a string that timestamp() cannot parse, is in the third argument.
        cause = getattr(error.args[1], "__name__", "error")
        detail = "; ".join(str(part) for part in error.args[2])[:200]
        return f"a function call failed ({cause}: {detail})"
    return text[:300]


def _cel_type_name(value: Any) -> str:
    if value is None:
        return "null"
    return type(value).__name__.removesuffix("Type").lower()

"""Read and validate policy files.

Validation has two phases, and both collect every problem of a file instead of stopping at the
first. The schema (``model.py``, unknown keys rejected) checks each policy on its own. The
semantic checks then run on every policy: registered action names, auto only for safe and
reversible actions, one rule per action, approver groups (when the caller passes the groups of
``approvals.groups``), label selectors, CEL conditions and unique names. For a policy with
schema errors, the semantic checks run on the fields whose values have the right shape and
no schema error of their own. Each problem names the file, the line, the policy and the field.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import costwarden.actions
from costwarden.actions.registry import ACTIONS, ActionRegistry
from costwarden.config import PolicySettings, Settings
from costwarden.domain.governance import canonical_json
from costwarden.domain.selector import parse_selector
from costwarden.errors import PolicyFileError
from costwarden.policy.cel import ConditionError, compile_condition
from costwarden.policy.engine import ActionRule, Policy, PolicyFile, PolicySet, Selector
from costwarden.policy.model import PolicyFileModel, PolicyModel

POLICY_SUFFIXES = (".yaml", ".yml")

Location = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem; ``field`` is a dotted path inside the policy, such as
    ``actions.0.mode``."""

    path: str
    message: str
    line: int | None = None
    policy: str | None = None
    field: str | None = None
    value: object = None

    def __str__(self) -> str:
        parts = [self.path]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.policy is not None:
            parts.append(f"policy {self.policy!r}")
        if self.field:
            parts.append(f"field {self.field}")
        return f"{', '.join(parts)}: {self.message}"


@dataclass(frozen=True, slots=True)
class FileReport:
    """The result of checking one file: its policies when valid, else its problems."""

    path: str
    policies: tuple[Policy, ...] = ()
    problems: tuple[Problem, ...] = ()
    digest: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _FileCheck:
    path: str
    lines: dict[Location, int]
    data: Any
    registry: ActionRegistry
    approver_groups: frozenset[str] | None = None
    """The groups of ``approvals.groups``; None when the settings are not at hand."""
    problems: list[Problem] = field(default_factory=list)

    def add(
        self,
        message: str,
        location: Location,
        *,
        policy: str | None = None,
        value: object = None,
    ) -> None:
        entry = location[:1] == ("policies",) and len(location) > 1 and isinstance(location[1], int)
        inner = location[2:] if entry else location
        dotted = ".".join(str(part) for part in inner) or None
        self.problems.append(
            Problem(self.path, message, self._line(location), policy, dotted, value)
        )

    def _line(self, location: Location) -> int | None:
        for end in range(len(location), -1, -1):
            if location[:end] in self.lines:
                return self.lines[location[:end]]
        return None


def builtin_actions() -> ActionRegistry:
    """Import every module of ``costwarden.actions``, so that each action is registered, and
    return the registry."""
    for module in pkgutil.iter_modules(costwarden.actions.__path__):
        importlib.import_module(f"costwarden.actions.{module.name}")
    return ACTIONS


def policy_files(paths: Iterable[Path | str]) -> list[Path]:
    """Expand directories into their *.yaml and *.yml files, sorted by name; keep files as given."""
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.iterdir() if p.suffix in POLICY_SUFFIXES and p.is_file())
            )
        else:
            files.append(path)
    return files


def load_configured_policies(settings: Settings) -> PolicySet:
    """Load the policy files of ``settings.policy.paths``.

    Approver groups are checked against ``approvals.groups`` when it defines at least one group.
    """
    return load_policies(
        settings.policy.paths,
        settings=settings.policy,
        approver_groups=list(settings.approvals.groups) or None,
    )


def load_policies(
    paths: Iterable[Path | str],
    *,
    settings: PolicySettings | None = None,
    registry: ActionRegistry | None = None,
    approver_groups: Collection[str] | None = None,
) -> PolicySet:
    """Load every policy file under ``paths`` into a ``PolicySet``.

    Raise ``PolicyFileError`` for the first file with problems, listing all of that file's
    problems, or for a policy name used in two files. ``registry`` defaults to every built-in
    action. ``approver_groups`` are the names in ``approvals.groups``: when given, an
    ``approvers`` entry naming another group is a problem.
    """
    reports = check_files(policy_files(paths), registry=registry, approver_groups=approver_groups)
    for report in reports:
        if report.problems:
            raise problems_error(report.path, report.problems)

    files = [PolicyFile(r.path, r.digest or "", r.policies) for r in reports]
    return PolicySet(files, settings)


def check_files(
    paths: Sequence[Path],
    *,
    registry: ActionRegistry | None = None,
    approver_groups: Collection[str] | None = None,
) -> list[FileReport]:
    """Check each file, then policy names across files; return one report per file."""
    registry = registry if registry is not None else builtin_actions()
    reports = [
        check_file(path, registry=registry, approver_groups=approver_groups) for path in paths
    ]

    seen: dict[str, Policy] = {}
    checked = []
    for report in reports:
        duplicates = []
        for policy in report.policies:
            first = seen.setdefault(policy.name, policy)
            if first is not policy:
                message = f"duplicate policy name; {first.path} line {first.line} uses it already"
                duplicates.append(
                    Problem(report.path, message, policy.line, policy.name, "name", policy.name)
                )
        if duplicates:
            report = FileReport(report.path, (), report.problems + tuple(duplicates))
        checked.append(report)
    return checked


def check_file(
    path: Path | str,
    *,
    registry: ActionRegistry | None = None,
    approver_groups: Collection[str] | None = None,
) -> FileReport:
    """Read and validate one policy file, collecting every problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return _fail(name, "file not found; check the path or policy.paths")
    except IsADirectoryError:
        return _fail(name, "is a directory; pass a policy file, or the directory in policy.paths")
    except UnicodeDecodeError as exc:
        line = Path(path).read_bytes().count(b"\n", 0, exc.start) + 1
        return _fail(name, "not UTF-8 text; save the file as UTF-8", line)
    except OSError as exc:
        return _fail(name, f"cannot be read: {exc.strerror or exc}")
    return check_text(text, name, registry=registry, approver_groups=approver_groups)


def check_text(
    text: str,
    path: str = "<policies>",
    *,
    registry: ActionRegistry | None = None,
    approver_groups: Collection[str] | None = None,
) -> FileReport:
    """Validate the text of a policy file; ``path`` names it in problems.

    ``approver_groups`` are the names in ``approvals.groups``; None skips that check.
    """
    registry = registry if registry is not None else builtin_actions()
    try:
        data, lines = _parse_yaml(text)
    except _YamlProblem as problem:
        return _fail(path, problem.message, problem.line)

    groups = frozenset(approver_groups) if approver_groups is not None else None
    check = _FileCheck(path, lines, data, registry, groups)
    entries = _top_level(check)
    policies = [
        policy for index, entry in entries if (policy := _check_policy(check, index, entry))
    ]

    # Names are compared over every entry, valid or not, so a duplicate is reported together
    # with the other problems of the file.
    first_lines: dict[str, int | None] = {}
    for index, entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        line = check.lines.get(("policies", index))
        if name in first_lines:
            message = f"duplicate policy name; line {first_lines[name]} uses it already"
            check.problems.append(Problem(path, message, line, name, "name", name))
        first_lines.setdefault(name, line)

    if check.problems:
        return FileReport(path, (), tuple(check.problems))
    specs = {"version": 1, "policies": [dict(policy.spec) for policy in policies]}
    digest = hashlib.sha256(canonical_json(specs).encode()).hexdigest()
    return FileReport(path, tuple(policies), (), digest)


def problems_error(path: str, problems: Sequence[Problem]) -> PolicyFileError:
    """Build one ``PolicyFileError`` listing ``problems``; its attributes describe the first."""
    first = problems[0]
    if len(problems) == 1:
        body = str(first).removeprefix(f"{path}, ").removeprefix(f"{path}: ")
        error = PolicyFileError(path, body)
    else:
        listed = "\n  ".join(str(problem).removeprefix(f"{path}, ") for problem in problems)
        error = PolicyFileError(path, f"{len(problems)} problems:\n  {listed}")
    error.policy = first.policy
    error.field = first.field
    error.value = first.value
    error.problems = list(problems)  # type: ignore[attr-defined]
    return error


def _fail(path: str, message: str, line: int | None = None) -> FileReport:
    return FileReport(path, (), (Problem(path, message, line),))


class _YamlProblem(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        self.message = message
        self.line = line
        super().__init__(message)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it; both keep line marks."""


def _parse_yaml(text: str) -> tuple[Any, dict[Location, int]]:
    """Parse YAML safely; return the data and the line of every mapping key and list item."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise _YamlProblem("the file is empty; expected a mapping with a 'policies' list", None)
        lines: dict[Location, int] = {}
        _index_lines(node, (), lines)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise _YamlProblem(f"not valid YAML: {exc.problem or exc}", line) from exc
    except yaml.YAMLError as exc:
        raise _YamlProblem(f"not valid YAML: {exc}", None) from exc
    finally:
        loader.dispose()
    return data, lines


def _index_lines(node: yaml.Node, location: Location, lines: dict[Location, int]) -> None:
    lines.setdefault(location, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                raise _YamlProblem(
                    f"key {name!r} appears twice in one mapping", key.start_mark.line + 1
                )
            seen.add(name)
            lines[(*location, name)] = key.start_mark.line + 1
            _index_lines(value, (*location, name), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*location, index), lines)


def _top_level(check: _FileCheck) -> list[tuple[int, Any]]:
    """Check the file's top level; return the policy entries to check one by one."""
    data = check.data
    if not isinstance(data, dict):
        check.add("expected a mapping with a 'policies' list at the top level", ())
        return []
    envelope = {key: value for key, value in data.items() if key != "policies"}
    envelope["policies"] = [{"name": "placeholder", "production": True}]
    try:
        PolicyFileModel.model_validate(envelope)
    except ValidationError as exc:
        for error in exc.errors():
            check.add(_message(error), tuple(error["loc"]), value=_value(error))

    policies = data.get("policies")
    if policies is None:
        check.add("missing; list the policies under 'policies:'", ("policies",))
        return []
    if not isinstance(policies, list) or not policies:
        check.add("expected a non-empty list of policies", ("policies",))
        return []
    return list(enumerate(policies))


def _check_policy(check: _FileCheck, index: int, entry: Any) -> Policy | None:
    location: Location = ("policies", index)
    name = _entry_name(entry, index)
    try:
        model = PolicyModel.model_validate(entry)
    except ValidationError as exc:
        for error in exc.errors():
            check.add(_message(error), (*location, *error["loc"]), policy=name, value=_value(error))
        invalid = {tuple(error["loc"]) for error in exc.errors()}
        _check_valid_parts(check, location, name, entry, invalid)
        return None

    before = len(check.problems)
    selector = _selector(check, location, model)
    condition = None
    if model.condition is not None:
        try:
            condition = compile_condition(model.condition)
        except ConditionError as exc:
            check.add(str(exc), (*location, "condition"), policy=name, value=model.condition)
    rules = _rules(check, location, model)
    if len(check.problems) > before or selector is None:
        return None

    return Policy(
        name=model.name,
        selector=selector,
        rules=rules,
        condition=condition,
        production=model.production,
        critical=model.critical,
        description=model.description,
        path=check.path,
        line=check.lines.get(location),
        spec=model.model_dump(mode="json"),
    )


def _selector(check: _FileCheck, location: Location, model: PolicyModel) -> Selector | None:
    spec = model.selector
    labels = None
    if spec.labels is not None:
        try:
            labels = parse_selector(spec.labels)
        except ValueError as exc:
            check.add(
                str(exc), (*location, "selector", "labels"), policy=model.name, value=spec.labels
            )
            return None

    def parts(values: list[str] | None) -> tuple[str, ...] | None:
        return tuple(values) if values is not None else None

    return Selector(
        kinds=parts(list(spec.kinds) if spec.kinds is not None else None),
        clusters=parts(spec.clusters),
        projects=parts(spec.projects),
        clouds=parts(spec.clouds),
        namespaces=parts(spec.namespaces),
        names=parts(spec.names),
        labels=labels,
        labels_text=spec.labels,
    )


def _rules(check: _FileCheck, location: Location, model: PolicyModel) -> tuple[ActionRule, ...]:
    rules = []
    seen: set[str] = set()
    for index, entry in enumerate(model.actions):
        where = (*location, "actions", index)
        ok = _check_rule(check, where, model.name, entry.action, entry.mode, seen)
        ok = _check_approvers(check, where, model.name, entry.approvers) and ok
        if ok:
            rules.append(
                ActionRule(entry.action, entry.mode, tuple(entry.approvers), entry.min_approvals)
            )
    return tuple(rules)


def _check_rule(
    check: _FileCheck,
    where: Location,
    policy: str,
    action: str,
    mode: str | None,
    seen: set[str],
) -> bool:
    """Check one action entry: a registered action, listed once, auto only when allowed.

    ``mode`` is None when the schema rejected it, so it is not checked again.
    """
    if action not in check.registry:
        known = ", ".join(check.registry.names()) or "none are registered"
        check.add(
            f"unknown action {action!r}; known actions: {known}",
            (*where, "action"),
            policy=policy,
            value=action,
        )
        return False
    if action in seen:
        check.add(
            f"{action} is listed twice; give each action one entry",
            (*where, "action"),
            policy=policy,
            value=action,
        )
        return False
    seen.add(action)

    spec = check.registry.spec(action)
    if mode == "auto" and not spec.auto_allowed:
        missing = " and ".join(
            word
            for word, flag in (("safe", spec.safe), ("reversible", spec.reversible))
            if not flag
        )
        check.add(
            f"auto is allowed only for safe, reversible actions, and {action} is not "
            f"{missing}; use approve",
            (*where, "mode"),
            policy=policy,
            value=mode,
        )
        return False
    return True


def _check_approvers(
    check: _FileCheck, where: Location, policy: str, approvers: Sequence[Any]
) -> bool:
    """Check that each approver group is defined in ``approvals.groups``, when those are known.

    Entries that are not strings are left to the schema.
    """
    if check.approver_groups is None:
        return True
    ok = True
    for index, group in enumerate(approvers):
        if not isinstance(group, str) or group in check.approver_groups:
            continue
        defined = ", ".join(sorted(check.approver_groups)) or "none, approvals.groups is empty"
        check.add(
            f"approver group {group!r} is not defined in approvals.groups (defined: {defined}); "
            "add the group with its members to approvals.groups or fix the name",
            (*where, "approvers", index),
            policy=policy,
            value=group,
        )
        ok = False
    return ok


def _check_valid_parts(
    check: _FileCheck, location: Location, policy: str, entry: Any, invalid: set[Location]
) -> None:
    """Run the semantic checks on the parts of a policy that the schema did not reject.

    ``invalid`` holds the locations of the schema errors inside the policy. A part is checked
    only when it has the type the schema expects and no schema error is at or inside it.
    """
    if not isinstance(entry, dict):
        return

    def clean(*part: str | int) -> bool:
        return not any(error[: len(part)] == part for error in invalid)

    selector = entry.get("selector")
    if isinstance(selector, dict):
        labels = selector.get("labels")
        if isinstance(labels, str) and labels and clean("selector", "labels"):
            try:
                parse_selector(labels)
            except ValueError as exc:
                check.add(str(exc), (*location, "selector", "labels"), policy=policy, value=labels)

    condition = entry.get("condition")
    if isinstance(condition, str) and condition and clean("condition"):
        try:
            compile_condition(condition)
        except ConditionError as exc:
            check.add(str(exc), (*location, "condition"), policy=policy, value=condition)

    actions = entry.get("actions")
    seen: set[str] = set()
    for index, item in enumerate(actions if isinstance(actions, list) else []):
        if not isinstance(item, dict):
            continue
        where = (*location, "actions", index)
        action = item.get("action")
        if isinstance(action, str) and action and clean("actions", index, "action"):
            mode = item.get("mode") if clean("actions", index, "mode") else None
            _check_rule(check, where, policy, action, mode, seen)
        approvers = item.get("approvers")
        if isinstance(approvers, list) and clean("actions", index, "approvers"):
            _check_approvers(check, where, policy, approvers)


def _entry_name(entry: Any, index: int) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
        return entry["name"]
    return f"#{index + 1}"


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing; this field is required"
    if kind == "extra_forbidden":
        return "unknown field; check its spelling"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return message
    value = _value(error)
    return f"{message} (got {value!r})" if value is not None else message


def _value(error: Any) -> object:
    value = error.get("input")
    if isinstance(value, dict | list) or error["type"] in ("missing", "extra_forbidden"):
        return None
    return value

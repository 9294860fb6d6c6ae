"""Read and change single values in YAML and Terraform (HCL) files without reformatting them.

A key path names one value: dot-separated names, each optionally followed by selectors in
brackets. ``[name=worker]`` picks the list item or block whose ``name`` is ``worker``, ``[0]``
picks a list item by position, and ``[prod]`` picks a Terraform block with that label. Examples:
``machinePools[name=worker].size`` in a cluster profile, and
``resource[spectrocloud_cluster_aws][prod].machine_pool[name=worker].count`` or
``worker_count`` in Terraform. Names cannot contain dots or brackets.

An edit replaces only the characters of the old value. Comments, quoting style, indentation and
every other line stay as they were, so the pull request diff shows one changed line per value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from costwarden.errors import FileEditError

FileFormat = Literal["yaml", "hcl"]
Scalar = str | int | float | bool | None

SEGMENT = re.compile(r"([^.\[\]]+)((?:\[[^\]]*\])*)")
SELECTOR = re.compile(r"\[([^\]]*)\]")


@dataclass(frozen=True, slots=True)
class Segment:
    """One step of a key path: a name and its selectors (``key=value``, an index or a label)."""

    name: str
    selectors: tuple[str, ...] = ()


def parse_key_path(key: str) -> tuple[Segment, ...]:
    """Split a key path into segments; raise ``ValueError`` naming the key when it is malformed."""
    segments = []
    for part in key.split("."):
        match = SEGMENT.fullmatch(part.strip())
        if match is None:
            raise ValueError(
                f"key path {key!r} has an invalid part {part!r}; write names separated by dots, "
                "each optionally followed by [field=value], [index] or [label]"
            )
        selectors = tuple(s.strip() for s in SELECTOR.findall(match.group(2)))
        segments.append(Segment(match.group(1).strip(), selectors))
    return tuple(segments)


def format_of(path: str, configured: str = "auto") -> FileFormat:
    """Return the file format: the configured one, or the one that the file extension implies."""
    if configured in ("yaml", "hcl"):
        return configured  # type: ignore[return-value]
    lower = path.lower()
    if lower.endswith((".tf", ".tfvars", ".hcl")):
        return "hcl"
    if lower.endswith((".yaml", ".yml")):
        return "yaml"
    raise FileEditError(
        f"{path}: cannot tell the format from the extension; set format: yaml or format: hcl "
        "in the repository's file settings"
    )


def read_values(text: str, fmt: FileFormat, keys: list[str], path: str) -> dict[str, Scalar]:
    """Return the current value at each key path."""
    return {key: _locate(text, fmt, key, path).value for key in keys}


def replace_values(
    text: str, fmt: FileFormat, changes: Mapping[str, Scalar], path: str
) -> str:
    """Return ``text`` with the value at each key path replaced, and nothing else changed.

    The result is parsed again and each key checked, so a replacement that the format would
    read differently (for example a string that YAML reads as a number) raises
    ``FileEditError`` instead of committing a wrong file.
    """
    located = [(_locate(text, fmt, key, path), key, value) for key, value in changes.items()]
    located.sort(key=lambda item: item[0].start, reverse=True)
    for spot, key, value in located:
        rendered = _render(spot, value, fmt, key, path)
        text = text[: spot.start] + rendered + text[spot.end :]

    for key, value in changes.items():
        now = _locate(text, fmt, key, path).value
        if not same_value(now, value):
            raise FileEditError(
                f"{path}: after the edit, {key} reads as {now!r} instead of {value!r}; "
                "change the value by hand"
            )
    return text


def same_value(left: Any, right: Any) -> bool:
    """Compare two scalars as a person would: 3 equals 3.0, but "3" and True differ from 3."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return float(left) == float(right)
    return type(left) is type(right) and left == right


@dataclass(frozen=True, slots=True)
class _Spot:
    """Where a value sits in the text: character offsets, the value and how it is written."""

    start: int
    end: int
    value: Scalar
    style: str = ""


def _locate(text: str, fmt: FileFormat, key: str, path: str) -> _Spot:
    try:
        segments = parse_key_path(key)
    except ValueError as exc:
        raise FileEditError(f"{path}: {exc}") from None
    if fmt == "yaml":
        return _locate_yaml(text, segments, key, path)
    return _locate_hcl(text, segments, key, path)


def _render(spot: _Spot, value: Scalar, fmt: FileFormat, key: str, path: str) -> str:
    if fmt == "hcl":
        return _render_hcl(value)
    if spot.style in ("|", ">"):
        raise FileEditError(f"{path}: {key} is a block scalar; change it by hand")
    if isinstance(value, str) and spot.style in ("'", '"'):
        if spot.style == "'":
            return "'" + value.replace("'", "''") + "'"
        return json.dumps(value, ensure_ascii=False)
    dumped = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000)
    return dumped.removesuffix("\n").removesuffix("\n...").strip()


# YAML


def _locate_yaml(text: str, segments: tuple[Segment, ...], key: str, path: str) -> _Spot:
    try:
        documents = [node for node in yaml.compose_all(text) if node is not None]
    except yaml.YAMLError as exc:
        raise FileEditError(f"{path}: not valid YAML: {exc}") from None

    found: list[yaml.Node] = []
    for document in documents:
        node = _walk_yaml(document, segments)
        if node is not None:
            found.append(node)
    if not found:
        raise FileEditError(f"{path}: key {key} not found; check the key path or file settings")
    if len(found) > 1:
        raise FileEditError(f"{path}: key {key} matches in {len(found)} YAML documents")
    node = found[0]
    if not isinstance(node, yaml.ScalarNode):
        raise FileEditError(f"{path}: {key} is a mapping or list, not a single value")

    loader = yaml.SafeLoader("")
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, str | int | float | bool | type(None)):
        value = str(value)
    return _Spot(node.start_mark.index, node.end_mark.index, value, node.style or "")


def _walk_yaml(node: yaml.Node, segments: tuple[Segment, ...]) -> yaml.Node | None:
    for segment in segments:
        if not isinstance(node, yaml.MappingNode):
            return None
        child = next(
            (value for name, value in node.value if _yaml_text(name) == segment.name), None
        )
        if child is None:
            return None
        node = child
        for selector in segment.selectors:
            picked = _select_yaml(node, selector)
            if picked is None:
                return None
            node = picked
    return node


def _select_yaml(node: yaml.Node, selector: str) -> yaml.Node | None:
    if not isinstance(node, yaml.SequenceNode):
        return None
    if selector.isdigit():
        index = int(selector)
        return node.value[index] if index < len(node.value) else None
    field_name, _, wanted = selector.partition("=")
    matches = [
        item
        for item in node.value
        if isinstance(item, yaml.MappingNode)
        and any(
            _yaml_text(name) == field_name.strip() and _yaml_text(value) == wanted.strip()
            for name, value in item.value
        )
    ]
    return matches[0] if len(matches) == 1 else None


def _yaml_text(node: yaml.Node) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


# HCL


@dataclass
class _HclNode:
    """A block body, an object value or an object in a list, with its attributes' positions."""

    name: str
    labels: tuple[str, ...] = ()
    index: int | None = None
    attributes: dict[str, tuple[int, int]] = field(default_factory=dict)
    children: list[_HclNode] = field(default_factory=list)


def _locate_hcl(text: str, segments: tuple[Segment, ...], key: str, path: str) -> _Spot:
    try:
        root = _HclParser(text).parse()
    except ValueError as exc:
        raise FileEditError(f"{path}: not valid HCL: {exc}") from None

    node = root
    *parents, last = segments
    for segment in parents:
        matches = [
            child
            for child in node.children
            if child.name == segment.name
            and all(_hcl_selects(text, child, s) for s in segment.selectors)
        ]
        if len(matches) != 1:
            problem = "not found" if not matches else f"matches {len(matches)} blocks"
            raise FileEditError(
                f"{path}: {segment.name}{''.join(f'[{s}]' for s in segment.selectors)} of key "
                f"{key} {problem}; add a [field=value] or [label] selector or fix the key path"
            )
        node = matches[0]

    if last.selectors or last.name not in node.attributes:
        raise FileEditError(f"{path}: key {key} not found; check the key path or file settings")
    start, end = node.attributes[last.name]
    raw = text[start:end]
    try:
        value = _hcl_literal(raw)
    except ValueError:
        raise FileEditError(
            f"{path}: {key} is the expression {raw!r}, not a literal value; change it by hand"
        ) from None
    return _Spot(start, end, value)


def _hcl_selects(text: str, node: _HclNode, selector: str) -> bool:
    if selector.isdigit():
        return node.index == int(selector)
    if "=" not in selector:
        return selector.strip('"') in node.labels
    name, _, wanted = selector.partition("=")
    span = node.attributes.get(name.strip())
    if span is None:
        return False
    try:
        value = _hcl_literal(text[span[0] : span[1]])
    except ValueError:
        return False
    return str(value).lower() == wanted.strip() if isinstance(value, bool) else (
        str(value) == wanted.strip()
    )


def _hcl_literal(raw: str) -> Scalar:
    """Return the Python value of an HCL literal; raise ``ValueError`` for anything else."""
    text = raw.strip()
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*([eE][-+]?\d+)?|-?\d+[eE][-+]?\d+", text):
        return float(text)
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        if "${" in text.replace("$${", "") or "%{" in text.replace("%%{", ""):
            raise ValueError("interpolated string")
        return str(json.loads(text.replace("$${", "${").replace("%%{", "%{")))
    raise ValueError("not a literal")


def _render_hcl(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    escaped = json.dumps(value, ensure_ascii=False)
    return escaped.replace("${", "$${").replace("%{", "%%{")


class _HclParser:
    """A parser of the structure of HCL: blocks, attributes, objects and lists.

    It records where each attribute's value starts and ends and skips over expressions,
    strings, heredocs and comments without interpreting them.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def parse(self) -> _HclNode:
        root = _HclNode(name="")
        self._body(root, None)
        return root

    def _error(self, message: str) -> ValueError:
        line = self.text.count("\n", 0, self.i) + 1
        return ValueError(f"line {line}: {message}")

    def _peek(self, count: int = 1) -> str:
        return self.text[self.i : self.i + count]

    def _skip(self, newlines: bool) -> None:
        """Skip spaces and comments, and newlines and commas too when ``newlines`` is set."""
        text = self.text
        while self.i < len(text):
            char = text[self.i]
            if char in " \t\r" or (newlines and char in "\n,"):
                self.i += 1
            elif char == "#" or text.startswith("//", self.i):
                end = text.find("\n", self.i)
                self.i = len(text) if end < 0 else end
            elif text.startswith("/*", self.i):
                end = text.find("*/", self.i + 2)
                if end < 0:
                    raise self._error("unterminated /* comment")
                self.i = end + 2
            else:
                return

    def _body(self, node: _HclNode, closing: str | None) -> None:
        while True:
            self._skip(newlines=True)
            if self.i >= len(self.text):
                if closing is not None:
                    raise self._error(f"missing {closing!r}")
                return
            if closing is not None and self._peek() == closing:
                self.i += 1
                return
            name = self._name()
            self._skip(newlines=False)
            if self._peek() in ("=", ":") and self._peek(2) != "==":
                self.i += 1
                self._attribute(node, name)
            else:
                self._block(node, name)

    def _name(self) -> str:
        if self._peek() == '"':
            start = self.i
            self._string()
            return str(json.loads(self.text[start : self.i]))
        match = re.compile(r"[A-Za-z_][\w-]*").match(self.text, self.i)
        if match is None:
            raise self._error(f"expected a name, found {self._peek()!r}")
        self.i = match.end()
        return match.group(0)

    def _block(self, parent: _HclNode, kind: str) -> None:
        labels = []
        while True:
            self._skip(newlines=False)
            if self._peek() == "{":
                self.i += 1
                break
            if self.i >= len(self.text) or self._peek() == "\n":
                raise self._error(f"block {kind} has no opening brace")
            labels.append(self._name())
        child = _HclNode(name=kind, labels=tuple(labels))
        parent.children.append(child)
        self._body(child, "}")

    def _attribute(self, parent: _HclNode, name: str) -> None:
        self._skip(newlines=False)
        start = self.i
        self._expression(parent, name, None)
        end = self.i
        while end > start and self.text[end - 1] in " \t\r":
            end -= 1
        parent.attributes[name] = (start, end)

    def _expression(self, parent: _HclNode, name: str, index: int | None) -> None:
        """Skip one expression; objects and lists of objects become child nodes of ``parent``."""
        char = self._peek()
        if char == "{":
            self.i += 1
            child = _HclNode(name=name, index=index)
            parent.children.append(child)
            self._body(child, "}")
            self._bare(stop_at_start=True)
            return
        if char == "[":
            self.i += 1
            position = 0
            while True:
                self._skip(newlines=True)
                if self._peek() == "]":
                    self.i += 1
                    break
                if self.i >= len(self.text):
                    raise self._error("missing ']'")
                self._expression(parent, name, position)
                position += 1
            self._bare(stop_at_start=True)
            return
        if self._peek(2) == "<<":
            self._heredoc()
            return
        self._bare(stop_at_start=False)

    def _bare(self, *, stop_at_start: bool) -> None:
        """Skip the rest of an expression up to a newline, comma or closing bracket."""
        depth = 0
        text = self.text
        while self.i < len(text):
            char = text[self.i]
            if char == '"':
                self._string()
                continue
            if depth == 0 and (
                char in "\n,}]" or char == "#" or text.startswith(("//", "/*"), self.i)
            ):
                return
            if char in "([{":
                if stop_at_start and depth == 0 and char != "(":
                    return
                depth += 1
            elif char in ")]}":
                depth -= 1
            self.i += 1

    def _string(self) -> None:
        text = self.text
        self.i += 1
        depth = 0
        while self.i < len(text):
            char = text[self.i]
            if char == "\\":
                self.i += 2
                continue
            if depth == 0 and char == '"':
                self.i += 1
                return
            if text.startswith(("${", "%{"), self.i) and not text.startswith(
                ("$${", "%%{"), self.i - 1
            ):
                depth += 1
                self.i += 2
                continue
            if depth and char == "}":
                depth -= 1
            elif char == "\n" and depth == 0:
                break
            self.i += 1
        raise self._error("unterminated string")

    def _heredoc(self) -> None:
        match = re.compile(r"<<-?([A-Za-z_]\w*)[ \t]*\n").match(self.text, self.i)
        if match is None:
            raise self._error("invalid heredoc")
        marker = match.group(1)
        closing = re.compile(rf"^[ \t]*{marker}[ \t]*$", re.MULTILINE).search(
            self.text, match.end()
        )
        if closing is None:
            raise self._error(f"heredoc {marker} is never closed")
        self.i = closing.end()

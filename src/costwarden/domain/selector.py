"""Kubernetes-style label selectors: ``team=ml,env!=prod``, ``tier in (a,b)``, ``gpu``, ``!spot``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Operator = Literal["=", "!=", "in", "notin", "exists", "!exists"]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>[-A-Za-z0-9_.]*)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" match a missing key too, as in Kubernetes.
        return not present or value not in self.values

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!exists":
            return f"!{self.key}"
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        return f"{self.key}{self.operator}{self.values[0]}"


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside a ``( … )`` value set."""
    terms: list[str] = []
    depth = 0
    current = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
            continue
        current.append(char)
    terms.append("".join(current))
    return terms


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """Parse a selector string; raise ``ValueError`` naming the term that does not parse."""
    requirements: list[Requirement] = []
    for term in _split_terms(text):
        if not term.strip():
            raise ValueError(f"empty term in label selector {text!r}")

        if match := _SET_RE.match(term):
            values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
            if not values:
                raise ValueError(f"label selector term {term.strip()!r} has an empty value set")
            requirements.append(Requirement(match["key"], match["op"], values))  # type: ignore[arg-type]
            continue

        if match := _EQ_RE.match(term):
            operator = "!=" if match["op"] == "!=" else "="
            requirements.append(Requirement(match["key"], operator, (match["value"],)))
            continue

        if match := _EXISTS_RE.match(term):
            operator = "!exists" if match["neg"] else "exists"
            requirements.append(Requirement(match["key"], operator))
            continue

        raise ValueError(
            f"invalid label selector term {term.strip()!r}; expected key=value, key!=value, "
            "key in (a,b), key notin (a,b), key or !key"
        )
    return tuple(requirements)


def matches_all(requirements: tuple[Requirement, ...], labels: dict[str, str]) -> bool:
    return all(requirement.matches(labels) for requirement in requirements)

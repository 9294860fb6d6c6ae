"""The action protocol and the registry that names actions.

An action registers with ``@ACTIONS.register("palette.resize_pool")`` on an ``Action``
subclass. ``safe`` and ``reversible`` say whether policies may run it in ``auto`` mode: only an
action that is both may. Every action reads the current state before it changes anything and
raises ``StaleStateError`` when that state differs from ``ActionRequest.expected``. Only the
runner calls ``apply`` and ``rollback``, after the production guard allowed the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from costwarden.domain.governance import ActionRequest
from costwarden.errors import ConfigError


class ActionParams(BaseModel):
    """Parameters of an action; each action validates its own with a subclass."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What a dry run, apply or rollback did or would do.

    ``before`` is the state read first and ``after`` the state the change leads to. ``undo``
    holds what ``rollback`` needs, such as the replica counts of a paused namespace. ``links``
    names where people see the change: a Palette page, a pull request, a ticket.
    """

    summary: str
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    undo: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    changed: bool = True


class Action:
    """Base class of actions. Subclasses set the class attributes and implement the methods.

    ``context`` is the runner's ``ActionContext``: the clients and settings an action uses.
    """

    name: ClassVar[str] = ""
    params_class: ClassVar[type[ActionParams]] = ActionParams
    scope_kinds: ClassVar[tuple[str, ...]] = ()
    safe: ClassVar[bool] = False
    reversible: ClassVar[bool] = False

    def dry_run(self, request: ActionRequest, context: Any) -> ActionOutcome:
        raise NotImplementedError

    def apply(self, request: ActionRequest, context: Any) -> ActionOutcome:
        raise NotImplementedError

    def rollback(
        self, request: ActionRequest, undo: Mapping[str, Any], context: Any
    ) -> ActionOutcome:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    factory: type[Action]

    @property
    def safe(self) -> bool:
        return self.factory.safe

    @property
    def reversible(self) -> bool:
        return self.factory.reversible

    @property
    def auto_allowed(self) -> bool:
        """Whether a policy may give this action the ``auto`` mode."""
        return self.factory.safe and self.factory.reversible

    @property
    def description(self) -> str:
        doc = (self.factory.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


class ActionRegistry:
    """Actions by registry name."""

    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec] = {}

    def register(self, name: str) -> Callable[[type[Action]], type[Action]]:
        def decorate(cls: type[Action]) -> type[Action]:
            if name in self._specs:
                raise ValueError(f"action {name!r} is already registered")
            cls.name = name
            self._specs[name] = ActionSpec(name, cls)
            return cls

        return decorate

    def names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str) -> ActionSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"unknown action {name!r}; known actions: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs


ACTIONS = ActionRegistry()

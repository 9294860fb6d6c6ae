"""The recommender protocol and the registry that names recommenders.

A recommender reads one ``RecommendInput`` (usage, machine pools and prices) and returns
``Recommendation`` objects. It registers with ``@RECOMMENDERS.register("name", SettingsClass)``
and is built as ``cls(SettingsClass(**options))``. The registry name becomes the ``kind`` of
each recommendation it makes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ValidationError

from costwarden.errors import ConfigError

if TYPE_CHECKING:
    from costwarden.domain.recommendation import Recommendation
    from costwarden.recommend.inputs import RecommendInput


class Recommender(Protocol):
    """Protocol of a recommender. The class docstring documents the method it follows."""

    name: str
    settings: BaseModel

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]: ...


@dataclass(frozen=True, slots=True)
class RecommenderSpec:
    """One registered recommender: its name, settings class and class."""

    name: str
    settings_class: type[BaseModel]
    factory: type[Any]

    @property
    def description(self) -> str:
        doc = self.factory.__doc__ or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


class RecommenderRegistry:
    """Recommenders by registry name."""

    def __init__(self) -> None:
        self._specs: dict[str, RecommenderSpec] = {}

    def register(
        self, name: str, settings_class: type[BaseModel]
    ) -> Callable[[type[Any]], type[Any]]:
        """Register a recommender class, built as ``cls(settings_class(**options))``."""

        def decorate(cls: type[Any]) -> type[Any]:
            if name in self._specs:
                raise ValueError(f"recommender {name!r} is already registered")
            cls.name = name
            self._specs[name] = RecommenderSpec(name, settings_class, cls)
            return cls

        return decorate

    def names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str) -> RecommenderSpec:
        try:
            return self._specs[name]
        except KeyError:
            valid = ", ".join(self.names())
            raise ConfigError(f"unknown recommender {name!r}; valid names: {valid}") from None

    def create(self, name: str, options: Mapping[str, Any] | None = None) -> Recommender:
        """Build a recommender; ``options`` are validated by its settings class."""
        spec = self.spec(name)
        try:
            settings = spec.settings_class(**(options or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"recommend.options.{name}.{'.'.join(str(part) for part in error['loc'])}: "
                f"{error['msg']} (got {error.get('input')!r})"
                for error in exc.errors()
            )
            valid = ", ".join(sorted(spec.settings_class.model_fields))
            raise ConfigError(
                f"invalid options for recommender {name!r}: {problems}. Valid options: {valid}"
            ) from exc
        recommender: Recommender = spec.factory(settings)
        return recommender


RECOMMENDERS = RecommenderRegistry()

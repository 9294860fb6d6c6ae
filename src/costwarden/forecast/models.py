"""Forecast models behind one protocol, and the registry that names them.

A model is fitted to one dense daily series (``fit(y)``) and then returns a point forecast and
prediction intervals for the next ``h`` days (``predict(h, levels)``). The engine in
``costwarden.forecast.engine`` picks models from ``MODELS`` by name, so a new model only needs a
settings class and ``@MODELS.register("name", SettingsClass)``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import costwarden
from costwarden.errors import ConfigError, ForecastError

if TYPE_CHECKING:
    from statsforecast.models import AutoETS

logger = logging.getLogger(__name__)

LEVELS: tuple[int, ...] = (80, 95)
"""Prediction interval levels, in percent, that every forecast carries."""


@dataclass(frozen=True, slots=True, eq=False)
class Prediction:
    """Point forecast and prediction intervals for ``h`` days, keyed by level in percent."""

    mean: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]

    @property
    def horizon(self) -> int:
        return len(self.mean)

    def check_finite(self, alias: str) -> None:
        """Raise ForecastError when the mean or any bound is NaN or infinite."""
        arrays = [self.mean, *self.lower.values(), *self.upper.values()]
        if not all(np.all(np.isfinite(array)) for array in arrays):
            raise ForecastError(f"{alias} returned a forecast with NaN or infinite values")


class ForecastModel(Protocol):
    """Protocol of a forecast model. Fitted state is kept in attributes ending in ``_``."""

    alias: str
    """Name recorded in ``Forecast.model``."""

    version: str
    """Library and version of the implementation, recorded in ``Forecast.model_version``."""

    def fit(self, y: np.ndarray) -> Self: ...

    def predict(self, h: int, levels: Sequence[int]) -> Prediction: ...

    def fitted_params(self) -> dict[str, object]:
        """Return the fitted parameters as JSON-compatible values, for the audit record."""
        ...


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One registered model: its registry name, settings class and constructor."""

    name: str
    settings_class: type[BaseModel]
    factory: Callable[[Any], Any]


ModelT = TypeVar("ModelT")


class ModelRegistry(Generic[ModelT]):
    """Forecast models by registry name."""

    def __init__(self) -> None:
        self._specs: dict[str, ModelSpec] = {}

    def register(
        self, name: str, settings_class: type[BaseModel]
    ) -> Callable[[type[Any]], type[Any]]:
        """Register a model class, constructed as ``cls(settings_class(**options))``."""

        def decorate(cls: type[Any]) -> type[Any]:
            if name in self._specs:
                raise ValueError(f"forecast model {name!r} is already registered")
            self._specs[name] = ModelSpec(name, settings_class, cls)
            return cls

        return decorate

    def names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            valid = ", ".join(self.names())
            raise ConfigError(f"unknown forecast model {name!r}; valid names: {valid}") from None

    def create(self, name: str, options: Mapping[str, Any] | None = None) -> ModelT:
        """Build an unfitted model; ``options`` are validated by the model's settings class."""
        spec = self.spec(name)
        try:
            settings = spec.settings_class(**(options or {}))
        except ValidationError as exc:
            raise ConfigError(f"invalid options for forecast model {name!r}: {exc}") from exc
        model: ModelT = spec.factory(settings)
        return model


MODELS: ModelRegistry[ForecastModel] = ModelRegistry()


def _optional_float(value: float) -> float | None:
    """Return None for the NaN that statsforecast stores for parameters a model does not use."""
    return None if math.isnan(value) else float(value)


class AutoETSSettings(BaseModel):
    """Options of the automatically selected exponential smoothing (ETS) model."""

    model_config = ConfigDict(extra="forbid")

    season_length: int = Field(7, ge=1, description="Season length in days; 7 is a weekly cycle.")
    model: str = Field(
        "ZZZ",
        pattern="^[AMZ][NAMZ][NAMZ]$",
        description="ETS components as error, trend, season: A additive, M multiplicative, "
        "N none, Z selected by AICc.",
    )
    damped: bool | None = Field(None, description="Damp the trend; unset lets AICc decide.")


@MODELS.register("auto-ets", AutoETSSettings)
class AutoETSModel:
    """statsforecast's AutoETS: ETS components and parameters chosen by AICc, native intervals."""

    alias = "AutoETS"
    version = f"statsforecast {package_version('statsforecast')}"

    def __init__(self, settings: AutoETSSettings) -> None:
        self.settings = settings
        self.model_: AutoETS | None = None

    def fit(self, y: np.ndarray) -> Self:
        # Imported here: statsforecast takes about a second to import, and only this
        # reference model needs it.
        from statsforecast.models import AutoETS

        model = AutoETS(
            season_length=self.settings.season_length,
            model=self.settings.model,
            damped=self.settings.damped,
        )

        # The AICc search tries candidates that are invalid for short series, and statsforecast
        # reports those as RuntimeWarnings (for example a division by zero degrees of freedom)
        # before it discards them. The chosen model is checked for finite output in predict.
        # NOTE: catch_warnings changes process-wide state, so fits must not run in threads.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            model.fit(np.asarray(y, dtype=np.float64))
        for warning in caught:
            logger.debug("AutoETS fit: %s", warning.message)

        self.model_ = model
        return self

    def predict(self, h: int, levels: Sequence[int]) -> Prediction:
        output = self._fitted().predict(h, level=list(levels))

        prediction = Prediction(
            mean=np.asarray(output["mean"], dtype=np.float64),
            lower={level: np.asarray(output[f"lo-{level}"]) for level in levels},
            upper={level: np.asarray(output[f"hi-{level}"]) for level in levels},
        )
        prediction.check_finite(self.alias)
        return prediction

    def fitted_params(self) -> dict[str, object]:
        fitted = self._fitted().model_
        error, trend, season, damped = fitted["components"]
        alpha, beta, gamma, phi = (float(value) for value in fitted["par"][:4])
        trend_text = trend + ("d" if damped == "D" else "")
        return {
            "method": f"ETS({error},{trend_text},{season})",
            "error": error,
            "trend": trend,
            "season": season,
            "damped": damped == "D",
            "season_length": int(fitted["m"]),
            "alpha": _optional_float(alpha),
            "beta": _optional_float(beta),
            "gamma": _optional_float(gamma),
            "phi": _optional_float(phi),
            "sigma2": float(fitted["sigma2"]),
            "aicc": _optional_float(float(fitted["aicc"])),
        }

    def _fitted(self) -> AutoETS:
        if self.model_ is None:
            raise ForecastError("AutoETS: call fit before predict")
        return self.model_


class WindowAverageSettings(BaseModel):
    """Options of the window-average model used for short histories."""

    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(7, ge=1, description="Number of most recent days averaged.")


@MODELS.register("window-average", WindowAverageSettings)
class WindowAverageModel:
    """Mean of the last ``window_days`` days, with the intervals of a random walk.

    The variance ``h`` days ahead is ``h * s2``, where ``s2`` is the mean squared day-to-day change
    over the fitted history. This is the interval of the naive (random-walk) forecast. It widens
    with the horizon because a short history shows little about where the level goes next.
    """

    alias = "WindowAverage"
    version = f"costwarden {costwarden.__version__}"

    def __init__(self, settings: WindowAverageSettings) -> None:
        self.settings = settings
        self.level_: float | None = None
        self.step_variance_: float | None = None
        self.window_: int | None = None

    def fit(self, y: np.ndarray) -> Self:
        y = np.asarray(y, dtype=np.float64)
        if len(y) == 0:
            raise ForecastError("WindowAverage needs at least one day of history")

        window = min(self.settings.window_days, len(y))
        self.level_ = float(np.mean(y[-window:]))
        self.window_ = window

        if len(y) >= 2:
            self.step_variance_ = float(np.mean(np.diff(y) ** 2))
        else:
            # NOTE: one day shows no day-to-day change, so the spread is a guess: the standard
            # deviation of one step is taken to be the day's own amount.
            self.step_variance_ = self.level_**2
        return self

    def predict(self, h: int, levels: Sequence[int]) -> Prediction:
        if self.level_ is None or self.step_variance_ is None:
            raise ForecastError("WindowAverage: call fit before predict")

        mean = np.full(h, self.level_)
        sd = np.sqrt(self.step_variance_ * np.arange(1, h + 1))
        lower, upper = {}, {}
        for level in levels:
            z = NormalDist().inv_cdf(0.5 + level / 200)
            lower[level] = mean - z * sd
            upper[level] = mean + z * sd
        return Prediction(mean=mean, lower=lower, upper=upper)

    def fitted_params(self) -> dict[str, object]:
        return {
            "window_days": self.window_,
            "level": self.level_,
            "step_variance": self.step_variance_,
        }

"""Daily spend forecasts with sample paths, and budget exceedance read from those paths.

``forecast_series`` fits one dense daily series with AutoETS (weekly season), or with a window
average when the history is short. It returns a ``Forecast`` with 80% and 95% intervals and
correlated sample paths. ``exceedance`` reads the probability, date and size of a budget overrun
from those paths.
"""

from costwarden.forecast.engine import (
    FALLBACK_MODEL,
    PRIMARY_MODEL,
    ForecastBatch,
    forecast_many,
    forecast_series,
    horizon_for,
    path_seed,
)
from costwarden.forecast.exceedance import exceedance
from costwarden.forecast.models import (
    LEVELS,
    MODELS,
    AutoETSModel,
    AutoETSSettings,
    ForecastModel,
    ModelRegistry,
    Prediction,
    WindowAverageModel,
    WindowAverageSettings,
)
from costwarden.forecast.paths import simulate_paths

__all__ = [
    "FALLBACK_MODEL",
    "LEVELS",
    "MODELS",
    "PRIMARY_MODEL",
    "AutoETSModel",
    "AutoETSSettings",
    "ForecastBatch",
    "ForecastModel",
    "ModelRegistry",
    "Prediction",
    "WindowAverageModel",
    "WindowAverageSettings",
    "exceedance",
    "forecast_many",
    "forecast_series",
    "horizon_for",
    "path_seed",
    "simulate_paths",
]

"""Daily spend forecasts with sample paths, and budget exceedance read from those paths.

``forecast_batch`` forecasts many daily series at once. For each series it picks seasonal
naive, ETS, Theta or their ensemble by the error on held-out recent days, handles level shifts
and month-end effects, and calibrates the 80% and 95% intervals on past forecast errors.
``forecast_series`` runs it on a batch of one. ``exceedance`` reads the probability, date and
size of a budget overrun from a forecast's correlated sample paths, and
``BatchForecast.exceedance`` does so for a whole batch without holding its paths.
"""

from costwarden.forecast.batch import BatchForecast, forecast_batch
from costwarden.forecast.candidates import (
    BATCH_MODELS,
    EnsembleModel,
    ETSModel,
    FittedBatch,
    SeasonalNaiveModel,
    ThetaModel,
)
from costwarden.forecast.engine import (
    FALLBACK_MODEL,
    PRIMARY_MODEL,
    ForecastBatch,
    forecast_many,
    forecast_series,
    horizon_for,
)
from costwarden.forecast.exceedance import exceedance, exceedance_many
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
from costwarden.forecast.options import BatchOptions
from costwarden.forecast.paths import simulate_paths

__all__ = [
    "BATCH_MODELS",
    "FALLBACK_MODEL",
    "LEVELS",
    "MODELS",
    "PRIMARY_MODEL",
    "AutoETSModel",
    "AutoETSSettings",
    "BatchForecast",
    "BatchOptions",
    "ETSModel",
    "EnsembleModel",
    "FittedBatch",
    "ForecastBatch",
    "ForecastModel",
    "ModelRegistry",
    "Prediction",
    "SeasonalNaiveModel",
    "ThetaModel",
    "WindowAverageModel",
    "WindowAverageSettings",
    "exceedance",
    "exceedance_many",
    "forecast_batch",
    "forecast_many",
    "forecast_series",
    "horizon_for",
    "simulate_paths",
]

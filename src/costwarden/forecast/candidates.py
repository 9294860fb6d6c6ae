"""Batched forecast models: seasonal naive, ETS with damped trend, Theta, and their ensemble.

A batched model fits every row of a 2-D array of daily values at once. Row ``i`` is fitted on
columns ``[starts[i], ends[i])``, and its forecast covers the days from column ``ends[i]`` on.
Each model returns a ``FittedBatch`` with point forecasts, the standard deviations of its own
(Gaussian) forecast errors, and in-sample forecasts from past origins for calibration.
Models register in ``BATCH_MODELS`` by name, each with a settings class.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

import costwarden
from costwarden.forecast import kernels
from costwarden.forecast.kernels import SEASON
from costwarden.forecast.models import ModelRegistry

MIN_ROWS_PER_THREAD = 64
"""Batches smaller than twice this run in the calling thread."""

BATCH_VERSION = f"costwarden {costwarden.__version__}"


class FittedBatch(Protocol):
    """A model fitted to every row of a batch."""

    alias: str

    def forecast(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the mean and standard deviation, shape (rows, horizon), of the next days."""
        ...

    def origin_forecasts(self, first_origin: int, horizons: np.ndarray) -> np.ndarray:
        """Return forecasts from past origins, shape (rows, origins, len(horizons)), NaN if unknown.

        Element ``[i, o, j]`` is the forecast made after column ``first_origin + o`` for the day
        ``horizons[j]`` columns later. The parameters are the fitted ones, and the states at an
        origin use the days up to it, also days after the fitted range.
        """
        ...

    def params(self, row: int) -> dict[str, object]:
        """Return the fitted parameters of one row as JSON-compatible values."""
        ...


class BatchModel(Protocol):
    alias: str
    version: str

    def fit(self, values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> FittedBatch: ...


BATCH_MODELS: ModelRegistry[BatchModel] = ModelRegistry()
"""Batched models by registry name."""


def run_in_threads(n_rows: int, work: Callable[[int, int], None]) -> None:
    """Call ``work(low, high)`` on contiguous row ranges, one per CPU for large batches.

    The kernels release the GIL, so the ranges run in parallel. Each row is computed on its own,
    so the result does not depend on the split.
    """
    workers = min(os.cpu_count() or 1, max(1, n_rows // MIN_ROWS_PER_THREAD))
    if workers <= 1:
        work(0, n_rows)
        return

    bounds = np.linspace(0, n_rows, workers + 1).astype(int)
    pool = _executor()
    futures = [
        pool.submit(work, int(low), int(high))
        for low, high in zip(bounds[1:-1], bounds[2:], strict=True)
    ]
    work(0, int(bounds[1]))
    for future in futures:
        future.result()


@lru_cache(maxsize=1)
def _executor() -> ThreadPoolExecutor:
    """Return the process-wide pool of kernel threads, created on first use.

    Starting threads for each kernel call would cost more than the kernels on small batches.
    """
    workers = max((os.cpu_count() or 1) - 1, 1)
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="costwarden-forecast")


def _profile_index(ends: np.ndarray, horizon: int) -> np.ndarray:
    """Return the weekday key, shape (rows, horizon), of each forecast day."""
    return (ends[:, None] + np.arange(horizon)[None, :]) % SEASON


def _origin_targets(first_origin: int, count: int, horizons: np.ndarray) -> np.ndarray:
    """Return the target column of each (origin, horizon) pair, shape (count, len(horizons))."""
    return first_origin + np.arange(count)[:, None] + horizons[None, :]


class SeasonalNaiveSettings(BaseModel):
    """The seasonal naive model has no options: the season is the week."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True, eq=False)
class FittedSeasonalNaive:
    values: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    sigma2: np.ndarray
    alias: str = "SeasonalNaive"

    def forecast(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        steps = np.arange(1, horizon + 1)
        source = self.ends[:, None] - SEASON + (steps[None, :] - 1) % SEASON
        mean = np.take_along_axis(self.values, source, axis=1)
        weeks = np.ceil(steps / SEASON)
        sd = np.sqrt(self.sigma2[:, None] * weeks[None, :])
        return mean, sd

    def origin_forecasts(self, first_origin: int, horizons: np.ndarray) -> np.ndarray:
        count = self.values.shape[1] - first_origin
        targets = _origin_targets(first_origin, count, horizons)
        source = targets - SEASON * np.ceil(horizons / SEASON).astype(int)[None, :]
        forecasts = self.values[:, np.clip(source, 0, None)]
        known = (source[None] >= self.starts[:, None, None]) & (
            targets[None] < self.values.shape[1]
        )
        return np.where(known, forecasts, np.nan)

    def params(self, row: int) -> dict[str, object]:
        return {"season_length": SEASON, "sigma2": float(self.sigma2[row])}


@BATCH_MODELS.register("seasonal-naive", SeasonalNaiveSettings)
class SeasonalNaiveModel:
    """Each day repeats the same weekday of the last week; the error variance grows per week."""

    alias = "SeasonalNaive"
    version = BATCH_VERSION

    def __init__(self, settings: SeasonalNaiveSettings) -> None:
        self.settings = settings

    def fit(self, values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> FittedBatch:
        sigma2 = np.empty(len(values))
        for row, (start, end) in enumerate(zip(starts, ends, strict=True)):
            y = values[row, start:end]
            lag = SEASON if len(y) > SEASON else 1
            changes = y[lag:] - y[:-lag] if len(y) > lag else np.zeros(1)
            sigma2[row] = float(np.mean(changes**2))
        return FittedSeasonalNaive(values, starts, ends, sigma2)


class ETSSettings(BaseModel):
    """Grid of ETS(A,Ad,A) parameters, searched in two stages per series by AIC."""

    model_config = ConfigDict(extra="forbid")

    alphas: tuple[float, ...] = Field(
        (0.05, 0.1, 0.2, 0.35, 0.55, 0.8),
        description="Level smoothing values tried in the first stage.",
    )
    gammas: tuple[float, ...] = Field(
        (0.0, 0.05, 0.15, 0.3), description="Weekly-season smoothing values tried."
    )
    trends: tuple[tuple[float, float], ...] = Field(
        ((0.001, 1.0), (0.01, 0.98), (0.01, 1.0), (0.03, 0.95), (0.1, 0.9)),
        description="(beta, phi) pairs tried in the second stage for the damped trend, besides "
        "no trend. phi=1 is an undamped trend.",
    )
    alpha_steps: tuple[float, ...] = Field(
        (0.7, 1.0, 1.4),
        description="Third stage: factors applied to the second stage's alpha.",
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> Self:
        for name, grid in (("alphas", self.alphas), ("gammas", self.gammas)):
            if not grid or not all(0.0 <= value <= 1.0 for value in grid):
                raise ValueError(f"{name} must be a non-empty list of values in [0, 1]")
        if 0.0 in self.alphas:
            raise ValueError("alphas must be greater than 0")
        for beta, phi in self.trends:
            if not (0.0 <= beta <= 1.0 and 0.0 < phi <= 1.0):
                raise ValueError(f"trend (beta={beta}, phi={phi}) is outside [0, 1] x (0, 1]")
        if not self.alpha_steps or not all(step > 0.0 for step in self.alpha_steps):
            raise ValueError("alpha_steps must be a non-empty list of positive factors")
        return self


@dataclass(frozen=True, slots=True, eq=False)
class FittedETS:
    values: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    params_: np.ndarray
    levels: np.ndarray
    slopes: np.ndarray
    profiles: np.ndarray
    sigma2: np.ndarray
    alias: str = "ETS"

    def forecast(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        alpha, beta, phi, gamma = (self.params_[:, k, None] for k in range(4))
        powers = np.cumprod(np.broadcast_to(phi, (len(phi), horizon)), axis=1)
        damped = np.cumsum(powers, axis=1)
        season = np.take_along_axis(self.profiles, _profile_index(self.ends, horizon), axis=1)
        mean = self.levels[:, None] + damped * self.slopes[:, None] + season

        steps = np.arange(1, horizon)
        weekly = (steps % SEASON == 0)[None, :]
        coefficients = alpha + beta * damped[:, : horizon - 1] + gamma * weekly
        growth = np.concatenate(
            [np.zeros((len(alpha), 1)), np.cumsum(coefficients**2, axis=1)], axis=1
        )
        sd = np.sqrt(self.sigma2[:, None] * (1.0 + growth))
        return mean, sd

    def origin_forecasts(self, first_origin: int, horizons: np.ndarray) -> np.ndarray:
        n = len(self.values)
        count = self.values.shape[1] - first_origin
        forecasts = np.full((n, count, len(horizons)), np.nan)
        scratch = _EtsScratch(n)

        def work(low: int, high: int) -> None:
            kernels.ets_filter_rows(
                self.values[low:high],
                self.starts[low:high],
                np.full(high - low, self.values.shape[1]),
                self.params_[low:high],
                first_origin,
                horizons,
                forecasts[low:high],
                *scratch.rows(low, high),
            )

        run_in_threads(n, work)
        return forecasts

    def params(self, row: int) -> dict[str, object]:
        alpha, beta, phi, gamma, trended = (float(value) for value in self.params_[row])
        if trended < 0.5:
            trend = "N"
        else:
            trend = "A" if phi >= 1.0 else "Ad"
        return {
            "method": f"ETS(A,{trend},A)",
            "alpha": alpha,
            "beta": beta if trended >= 0.5 else None,
            "phi": phi if trended >= 0.5 else None,
            "gamma": gamma,
            "season_length": SEASON,
            "sigma2": float(self.sigma2[row]),
        }


class _EtsScratch:
    """Output arrays of ``ets_filter_rows`` that a caller does not need."""

    def __init__(self, n: int) -> None:
        self.levels = np.empty(n)
        self.slopes = np.empty(n)
        self.profiles = np.empty((n, SEASON))
        self.sse = np.empty(n)

    def rows(self, low: int, high: int) -> tuple[np.ndarray, ...]:
        return (
            self.levels[low:high],
            self.slopes[low:high],
            self.profiles[low:high],
            self.sse[low:high],
        )


@BATCH_MODELS.register("ets", ETSSettings)
class ETSModel:
    """Additive ETS with a damped trend and a weekly season, fitted by a two-stage grid search.

    Each grid row is scored by the SSE of the one-step errors with an AIC penalty for its
    parameters, so a trend is kept only where it pays for itself. The first stage tries every
    (alpha, gamma) pair without a trend. The second stage keeps that gamma and tries every
    alpha with every trend. The third keeps that trend and tries the alpha times each of
    ``alpha_steps``. The initial states come from a least-squares line through the history and
    its first four weeks.
    """

    alias = "ETS"
    version = BATCH_VERSION

    def __init__(self, settings: ETSSettings) -> None:
        self.settings = settings

    def fit(self, values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> FittedBatch:
        n = len(values)
        first_grid = np.array(
            [
                (alpha, 0.0, 1.0, gamma, 0.0)
                for alpha in self.settings.alphas
                for gamma in self.settings.gammas
                if alpha + gamma <= 1.0
            ]
        )
        first = first_grid[_select(values, starts, ends, _tile(first_grid, n))]
        second_grid = self._trend_grid(first[:, 3])
        second = second_grid[np.arange(n), _select(values, starts, ends, second_grid)]
        third_grid = self._alpha_grid(second)
        params = third_grid[np.arange(n), _select(values, starts, ends, third_grid)]
        params = np.ascontiguousarray(params)

        scratch = _EtsScratch(n)
        no_horizons = np.empty(0, dtype=np.int64)
        no_origins = np.empty((n, 0, 0))

        def run(low: int, high: int) -> None:
            kernels.ets_filter_rows(
                values[low:high],
                starts[low:high],
                ends[low:high],
                params[low:high],
                values.shape[1],
                no_horizons,
                no_origins[low:high],
                *scratch.rows(low, high),
            )

        run_in_threads(n, run)
        sigma2 = scratch.sse / (ends - starts)
        return FittedETS(
            values, starts, ends, params, scratch.levels, scratch.slopes, scratch.profiles, sigma2
        )

    def _trend_grid(self, gammas: np.ndarray) -> np.ndarray:
        """Return every (alpha, trend) row with each series' gamma, shape (series, rows, 5)."""
        trends = [(0.0, 1.0, 0.0)] + [(beta, phi, 1.0) for beta, phi in self.settings.trends]
        rows = [
            (alpha, min(beta, alpha), phi, 0.0, trended)
            for alpha in self.settings.alphas
            for beta, phi, trended in trends
        ]
        grid = _tile(np.array(rows), len(gammas))
        grid[:, :, 3] = np.minimum(gammas[:, None], 1.0 - grid[:, :, 0])
        return grid

    def _alpha_grid(self, best: np.ndarray) -> np.ndarray:
        """Return each series' best row with alpha times each step, shape (series, rows, 5)."""
        steps = np.array(self.settings.alpha_steps)
        grid = np.repeat(best[:, None, :], len(steps), axis=1)
        alpha = np.clip(best[:, 0, None] * steps[None, :], 0.01, 1.0 - best[:, 3, None])
        grid[:, :, 0] = alpha
        grid[:, :, 1] = np.minimum(grid[:, :, 1], alpha)
        return np.ascontiguousarray(grid)


def _tile(grid: np.ndarray, n: int) -> np.ndarray:
    return np.repeat(grid[None, :, :], n, axis=0)


def _select(
    values: np.ndarray, starts: np.ndarray, ends: np.ndarray, grids: np.ndarray
) -> np.ndarray:
    """Return the index of each series' best row in its grid (series, rows, 5)."""
    grids = np.ascontiguousarray(grids)
    penalties = _penalties(grids)
    chosen = np.empty(len(values), dtype=np.int64)

    def work(low: int, high: int) -> None:
        kernels.ets_select_rows(
            values[low:high],
            starts[low:high],
            ends[low:high],
            grids[low:high],
            penalties[low:high],
            chosen[low:high],
        )

    run_in_threads(len(values), work)
    return chosen


def _penalties(grids: np.ndarray) -> np.ndarray:
    """Return the AIC penalty of each grid row: twice the number of estimated values.

    They are alpha, the initial level and the six free weekly states, gamma when it is above
    0, and beta, phi and the initial slope for a trend (phi does not count when it is 1).
    """
    gamma, phi, trended = grids[..., 3], grids[..., 2], grids[..., 4] > 0.5
    count = 2 + (SEASON - 1) + (gamma > 0.0) + trended * (2 + (phi < 1.0))
    return np.ascontiguousarray(2.0 * count, dtype=np.float64)


class ThetaSettings(BaseModel):
    """Options of the Theta method: the smoothing values tried."""

    model_config = ConfigDict(extra="forbid")

    alphas: tuple[float, ...] = Field(
        (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0),
        description="Level smoothing values tried; each must be in (0, 1].",
    )

    @model_validator(mode="after")
    def _check_alphas(self) -> Self:
        if not self.alphas or not all(0.0 < value <= 1.0 for value in self.alphas):
            raise ValueError("alphas must be a non-empty list of values in (0, 1]")
        return self


@dataclass(frozen=True, slots=True, eq=False)
class FittedTheta:
    values: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    alphas: np.ndarray
    drifts: np.ndarray
    levels: np.ndarray
    profiles: np.ndarray
    sigma2: np.ndarray
    alias: str = "Theta"

    def forecast(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        alpha = self.alphas[:, None]
        steps = np.arange(1, horizon + 1)[None, :]
        observed = (self.ends - self.starts)[:, None]
        memory = (1.0 - (1.0 - alpha) ** observed) / alpha
        season = np.take_along_axis(self.profiles, _profile_index(self.ends, horizon), axis=1)
        mean = self.levels[:, None] + self.drifts[:, None] * (steps - 1 + memory) + season
        sd = np.sqrt(self.sigma2[:, None] * (1.0 + alpha**2 * (steps - 1)))
        return mean, sd

    def origin_forecasts(self, first_origin: int, horizons: np.ndarray) -> np.ndarray:
        n = len(self.values)
        count = self.values.shape[1] - first_origin
        forecasts = np.full((n, count, len(horizons)), np.nan)

        def work(low: int, high: int) -> None:
            kernels.theta_origin_rows(
                self.values[low:high],
                self.starts[low:high],
                self.alphas[low:high],
                self.drifts[low:high],
                self.profiles[low:high],
                first_origin,
                horizons,
                forecasts[low:high],
            )

        run_in_threads(n, work)
        return forecasts

    def params(self, row: int) -> dict[str, object]:
        return {
            "method": "Theta (SES with drift on the deseasonalised series)",
            "alpha": float(self.alphas[row]),
            "drift": float(self.drifts[row]),
            "season_length": SEASON,
            "sigma2": float(self.sigma2[row]),
        }


@BATCH_MODELS.register("theta", ThetaSettings)
class ThetaModel:
    """The Theta method: simple exponential smoothing with drift, after removing the week.

    The weekly profile is the weekday mean around a least-squares line, and the drift is half
    the slope of that line. The smoothing parameter minimises the SSE of one-step forecasts.
    """

    alias = "Theta"
    version = BATCH_VERSION

    def __init__(self, settings: ThetaSettings) -> None:
        self.settings = settings
        self.grid_ = np.array(settings.alphas, dtype=np.float64)

    def fit(self, values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> FittedBatch:
        n = len(values)
        outputs = [np.empty(n), np.empty(n), np.empty(n), np.empty((n, SEASON)), np.empty(n)]
        no_horizons = np.empty(0, dtype=np.int64)
        no_origins = np.empty((n, 0, 0))

        def work(low: int, high: int) -> None:
            kernels.theta_rows(
                values[low:high],
                starts[low:high],
                ends[low:high],
                self.grid_,
                values.shape[1],
                no_horizons,
                no_origins[low:high],
                *(array[low:high] for array in outputs),
            )

        run_in_threads(n, work)
        alphas, drifts, levels, profiles, sse = outputs
        sigma2 = sse / (ends - starts)
        return FittedTheta(values, starts, ends, alphas, drifts, levels, profiles, sigma2)


class EnsembleSettings(BaseModel):
    """Options of the ensemble: which registered batched models it averages."""

    model_config = ConfigDict(extra="forbid")

    members: tuple[str, ...] = Field(
        ("ets", "theta"), min_length=2, description="Registry names of the averaged models."
    )


@dataclass(frozen=True, slots=True, eq=False)
class FittedEnsemble:
    members: Mapping[str, FittedBatch]
    alias: str = "Ensemble"

    def forecast(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        outputs = [member.forecast(horizon) for member in self.members.values()]
        mean = np.mean([mean for mean, _ in outputs], axis=0)
        # NOTE: the member errors are taken to be perfectly correlated, so the spread is the
        # mean of the members' spreads, an upper bound. Calibration rescales it.
        sd = np.mean([sd for _, sd in outputs], axis=0)
        return mean, sd

    def origin_forecasts(self, first_origin: int, horizons: np.ndarray) -> np.ndarray:
        forecasts = [
            member.origin_forecasts(first_origin, horizons) for member in self.members.values()
        ]
        return np.mean(forecasts, axis=0)

    def params(self, row: int) -> dict[str, object]:
        return {
            "method": "mean of " + " and ".join(self.members),
            **{name: member.params(row) for name, member in self.members.items()},
        }


@BATCH_MODELS.register("ensemble", EnsembleSettings)
class EnsembleModel:
    """The mean of the forecasts of several batched models (by default ETS and Theta)."""

    alias = "Ensemble"
    version = BATCH_VERSION

    def __init__(self, settings: EnsembleSettings) -> None:
        self.settings = settings

    def fit(self, values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> FittedBatch:
        fitted = {
            name: BATCH_MODELS.create(name).fit(values, starts, ends)
            for name in self.settings.members
        }
        return self.combine(fitted)

    def combine(self, fitted: Mapping[str, FittedBatch]) -> FittedBatch:
        """Build the ensemble from members that are already fitted to the same rows."""
        return FittedEnsemble({name: fitted[name] for name in self.settings.members})


def fit_models(
    names: Sequence[str],
    values: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, FittedBatch]:
    """Fit each named model once; an ensemble reuses the fits of its members.

    ``options`` maps a registry name to the options of that model's settings class.
    """
    options = options or {}
    models = {name: BATCH_MODELS.create(name, options.get(name)) for name in names}
    ensembles = {name: m for name, m in models.items() if isinstance(m, EnsembleModel)}
    needed = [name for name in names if name not in ensembles]
    for ensemble in ensembles.values():
        needed += [member for member in ensemble.settings.members if member not in needed]

    fitted: dict[str, FittedBatch] = {}
    for name in needed:
        model = models.get(name) or BATCH_MODELS.create(name, options.get(name))
        fitted[name] = model.fit(values, starts, ends)
    for name, ensemble in ensembles.items():
        fitted[name] = ensemble.combine(fitted)
    return {name: fitted[name] for name in names}

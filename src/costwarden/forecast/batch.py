"""The batched forecaster: many daily series at once, with a model chosen per series.

``forecast_batch`` takes a 2-D array, one row per series and one column per UTC day, all ending
on the same last complete day. Leading NaN means the series has no history yet. For each series
it then:

1. drops the leading days before the first spend, and keeps the last ``history_days``;
2. uses the window-average model when fewer than ``min_history_days`` remain;
3. detects a lasting level shift, then fits on the days after it or moves the earlier days;
4. estimates a month-end effect and removes it from the history;
5. scores every candidate model on the last ``holdout_days`` and picks the lowest MASE;
6. refits the chosen model on the whole history and forecasts, adding the month-end effect;
7. calibrates the 80% and 95% intervals on past forecast errors (see ``calibration``);
8. scales the intervals by the backtest's ``interval_adjustment`` when one is given (see
   ``adjustment``).

Before those steps, series with at least ``yearly_min_days`` of spend are fitted by the yearly
regression (see ``yearly``). Where it beats last week's repeat, it gives their forecast and they
skip the steps above.

The result is a ``BatchForecast``: a sequence of ``Forecast`` objects whose sample paths are
drawn when a forecast is read. Its ``exceedance`` checks a budget per series and streams the
paths, so those of the whole batch are never in memory at once.
"""

from __future__ import annotations

import logging
import time as timer
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, overload

import numpy as np

from costwarden.domain.budget import PeriodWindow
from costwarden.domain.forecast import DailyForecast, Exceedance, Forecast
from costwarden.errors import ForecastError
from costwarden.forecast import calibration as calib
from costwarden.forecast.adjustment import IntervalAdjustment, apply_adjustment
from costwarden.forecast.candidates import BATCH_MODELS, BATCH_VERSION, fit_models
from costwarden.forecast.changepoint import apply_level_shifts, detect_level_shifts, shift_params
from costwarden.forecast.kernels import SEASON
from costwarden.forecast.models import LEVELS, MODELS
from costwarden.forecast.monthend import (
    estimate_month_end,
    future_effects,
    month_end_params,
    remove_effects,
)
from costwarden.forecast.options import BatchOptions
from costwarden.forecast.paths import (
    PathInputs,
    draw_paths,
    innovation_pool,
    path_inputs,
    path_rows,
)
from costwarden.forecast.selection import (
    Selection,
    chosen_rows,
    fold_errors,
    run_folds,
    select_models,
)
from costwarden.forecast.yearly import MODEL_ALIAS as YEARLY_ALIAS
from costwarden.forecast.yearly import long_rows as yearly_rows
from costwarden.forecast.yearly import yearly_stage

if TYPE_CHECKING:
    from costwarden.config import ForecastSettings

logger = logging.getLogger(__name__)

FALLBACK_MODEL = "window-average"
MIN_BATCH_DAYS = 14
"""Days the batched models need at least: two weeks, one of them held out."""
MAX_LOGGED_FALLBACKS = 10
"""Short series named one by one in the log; beyond this, one summary line."""


@dataclass(frozen=True, slots=True, eq=False)
class _Panel:
    """Validated input: values with NaN before each series' first fitted column."""

    ids: tuple[str, ...]
    values: np.ndarray
    starts: np.ndarray
    first_day: date


@dataclass(slots=True, eq=False)
class _Output:
    """Forecast arrays of the whole batch, filled in by the fallback and the model stages."""

    mean: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]
    models: list[str]
    versions: list[str]
    params: list[dict[str, object]]
    fallback_reasons: list[str | None]

    @classmethod
    def empty(cls, n: int, horizon: int) -> _Output:
        return cls(
            mean=np.zeros((n, horizon)),
            lower={level: np.zeros((n, horizon)) for level in LEVELS},
            upper={level: np.zeros((n, horizon)) for level in LEVELS},
            models=[""] * n,
            versions=[""] * n,
            params=[{} for _ in range(n)],
            fallback_reasons=[None] * n,
        )


class BatchForecast(Sequence[Forecast]):
    """Forecasts of a batch of series, one ``Forecast`` per id in input order.

    Reading a forecast draws its sample paths from the shared innovation pool, so every access
    returns the same paths. ``exceedance`` computes the budget check of every series without
    keeping any series' paths.

    NOTE: a ``Forecast`` keeps its paths as float64, 2,000 paths x 45 days is 720 KB, so
    keeping all forecasts of 10,000 series takes 7 GB. Read them one at a time, or use
    ``exceedance``, for large batches.
    """

    def __init__(
        self,
        ids: tuple[str, ...],
        as_of: datetime,
        history_end: date,
        history_starts: list[date],
        output: _Output,
        settings: ForecastSettings,
    ) -> None:
        self.ids = ids
        self.as_of = as_of
        self.history_end = history_end
        self.history_starts = history_starts
        self.settings = settings
        self._output = output
        horizon = output.mean.shape[1]
        self.dates = tuple(history_end + timedelta(days=offset) for offset in range(1, horizon + 1))

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Forecast: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Forecast]: ...

    def __getitem__(self, index: int | slice) -> Forecast | Sequence[Forecast]:
        if isinstance(index, slice):
            return [self._forecast(row) for row in range(len(self))[index]]
        row = range(len(self))[index]
        return self._forecast(row)

    def __iter__(self) -> Iterator[Forecast]:
        for row in range(len(self)):
            yield self._forecast(row)

    @property
    def mean(self) -> np.ndarray:
        """Point forecasts, shape (series, horizon), clipped at 0."""
        return np.clip(self._output.mean, 0.0, None)

    def bounds(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the lower and upper bounds of the ``level``% intervals, clipped at 0."""
        return (
            np.clip(self._output.lower[level], 0.0, None),
            np.clip(self._output.upper[level], 0.0, None),
        )

    @property
    def models(self) -> list[str]:
        return list(self._output.models)

    def params(self, row: int) -> dict[str, object]:
        return self._output.params[row]

    @cached_property
    def path_inputs(self) -> PathInputs:
        return path_inputs(self._output.mean, self._output.lower, self._output.upper)

    def innovations(self) -> np.ndarray:
        return innovation_pool(self.settings.seed, self.settings.sample_paths, len(self.dates))

    def paths(self, row: int) -> np.ndarray:
        """Return the sample paths of one series, shape (sample_paths, horizon)."""
        rows = path_rows(self.settings.seed, self.ids[row], self.settings.sample_paths)
        return draw_paths(self.path_inputs, row, self.innovations(), rows)

    def exceedance(
        self,
        window: PeriodWindow,
        spent_to_date: Sequence[Decimal],
        budget_amounts: Sequence[Decimal],
        *,
        actual_breach_dates: Sequence[date | None] | None = None,
    ) -> list[Exceedance]:
        """Return the budget exceedance of every series in one period, as ``exceedance`` does."""
        from costwarden.forecast.exceedance import exceedance_many

        return exceedance_many(
            self, window, spent_to_date, budget_amounts, actual_breach_dates=actual_breach_dates
        )

    def _forecast(self, row: int) -> Forecast:
        output = self._output
        days = DailyForecast(
            dates=self.dates,
            mean=np.clip(output.mean[row], 0.0, None),
            lo80=np.clip(output.lower[80][row], 0.0, None),
            hi80=np.clip(output.upper[80][row], 0.0, None),
            lo95=np.clip(output.lower[95][row], 0.0, None),
            hi95=np.clip(output.upper[95][row], 0.0, None),
        )
        return Forecast(
            series_id=self.ids[row],
            as_of=self.as_of,
            history_start=self.history_starts[row],
            history_end=self.history_end,
            days=days,
            paths=self.paths(row),
            model=output.models[row],
            model_version=output.versions[row],
            params=output.params[row],
            fallback_reason=output.fallback_reasons[row],
        )


def forecast_batch(
    ids: Sequence[str],
    values_2d: np.ndarray,
    history_end: date,
    horizon: int,
    as_of: datetime,
    settings: ForecastSettings,
    *,
    options: BatchOptions | None = None,
) -> BatchForecast:
    """Forecast the ``horizon`` days after ``history_end`` for every row of ``values_2d``.

    Row ``i`` is the daily spend of series ``ids[i]`` and the last column is ``history_end``, the
    last complete UTC day at ``as_of``. Leading NaN marks days before a series existed. Any other
    NaN or infinite value, a duplicate id, or a bad horizon or ``as_of`` raises ForecastError
    naming the series, so check rows first when one bad series must not stop the batch
    (``forecast_many`` does).
    """
    options = options or settings.batch
    started = timer.perf_counter()
    panel = _prepare(ids, values_2d, history_end, horizon, as_of, settings)
    n, end = panel.values.shape
    output = _Output.empty(n, horizon)
    starts = panel.starts.copy()

    yearly = _fit_yearly(values_2d, yearly_rows(values_2d, options), horizon, options, output)
    weekly = np.ones(n, dtype=bool)
    weekly[list(yearly)] = False

    lengths = end - panel.starts
    short = lengths < max(settings.min_history_days, MIN_BATCH_DAYS)
    _fit_fallbacks(panel, np.flatnonzero(short & weekly), horizon, settings, output)
    long_rows = np.flatnonzero(~short & weekly)
    if long_rows.size:
        starts[long_rows] = _forecast_rows(panel, long_rows, horizon, options, output)

    if options.interval_adjustment is not None:
        _adjust_intervals(output, options.interval_adjustment)

    history_days = end - starts
    for row, days in yearly.items():
        history_days[row] = days
    history_starts = [history_end - timedelta(days=int(days) - 1) for days in history_days]
    for row in range(n):
        output.params[row]["history_days"] = int(history_days[row])
    logger.info(
        "forecast batch of %d series in %.2f s: %d with the fallback model, models %s",
        n,
        timer.perf_counter() - started,
        int((short & weekly).sum()),
        _model_counts(output.models),
    )
    return BatchForecast(panel.ids, as_of, history_end, history_starts, output, settings)


def validate_request(label: str, history_end: date, horizon: int, as_of: datetime) -> None:
    """Raise ForecastError unless the horizon and the times describe a forecast that can run."""
    if horizon < 1:
        raise ForecastError(f"{label}: horizon must be at least 1 day, got {horizon}")

    if as_of.tzinfo is None:
        raise ForecastError(
            f"{label}: as_of {as_of.isoformat()} has no time zone; pass a UTC datetime"
        )
    end_of_history = datetime.combine(history_end + timedelta(days=1), time(), UTC)
    if as_of < end_of_history:
        last_complete = as_of.astimezone(UTC).date() - timedelta(days=1)
        raise ForecastError(
            f"{label}: history_end {history_end} is not a complete UTC day at as_of "
            f"{as_of.isoformat()}; end the history on {last_complete} or earlier"
        )


def first_invalid_day(
    series_id: str, y: np.ndarray, history_end: date, *, leading_nan: bool
) -> ForecastError | None:
    """Return the error for the first value that is not a finite number, or None.

    With ``leading_nan`` the NaN values before the first number mean "no history yet" and pass.
    """
    finite = np.isfinite(y)
    if leading_nan and not finite.any() and np.all(np.isnan(y)):
        return ForecastError(
            f"series {series_id!r}: every value is NaN, so there is no history to forecast "
            "from; leave the series out or give at least one day of spend"
        )
    first = int(np.argmax(finite)) if leading_nan and finite.any() else 0
    leading = np.zeros(len(y), dtype=bool)
    leading[:first] = np.isnan(y[:first])
    invalid = np.flatnonzero(~finite & ~leading)
    if not invalid.size:
        return None

    index = int(invalid[0])
    day = history_end - timedelta(days=len(y) - 1 - index)
    return ForecastError(
        f"series {series_id!r}: value {y[index]} on {day} (index {index}) is not a finite "
        "number; fill days without cost data with 0 before forecasting"
    )


def _prepare(
    ids: Sequence[str],
    values_2d: np.ndarray,
    history_end: date,
    horizon: int,
    as_of: datetime,
    settings: ForecastSettings,
) -> _Panel:
    ids = tuple(ids)
    values = np.array(values_2d, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != len(ids) or values.shape[1] == 0:
        raise ForecastError(
            f"values must be a 2-D array with one row per id ({len(ids)}) and at least one "
            f"day, got shape {values.shape}"
        )
    duplicates = sorted(series_id for series_id, count in Counter(ids).items() if count > 1)
    if duplicates:
        raise ForecastError(f"series ids must be unique; repeated: {duplicates[:5]}")
    validate_request(f"batch of {len(ids)} series", history_end, horizon, as_of)

    for series_id, row in zip(ids, values, strict=True):
        error = first_invalid_day(series_id, row, history_end, leading_nan=True)
        if error is not None:
            raise error

    values = np.ascontiguousarray(values[:, -settings.history_days :])
    end = values.shape[1]
    first_day = history_end - timedelta(days=end - 1)
    starts = np.array([_first_spend(row) for row in values], dtype=np.int64)
    for row, start in enumerate(starts):
        values[row, :start] = np.nan
    return _Panel(ids, values, starts, first_day)


def _first_spend(row: np.ndarray) -> int:
    """Return the first column with a number, or with spend when there is any.

    Leading zeros of a new cluster are days before it existed, not spend of 0. A series that
    never spent keeps its zeros, and its forecast is 0.
    """
    finite = np.flatnonzero(np.isfinite(row))
    nonzero = np.flatnonzero(np.isfinite(row) & (row != 0.0))
    if nonzero.size:
        return int(nonzero[0])
    return int(finite[0])


def _fit_fallbacks(
    panel: _Panel, rows: np.ndarray, horizon: int, settings: ForecastSettings, output: _Output
) -> None:
    """Forecast short series with the window-average model and record the reason."""
    end = panel.values.shape[1]
    for count, row in enumerate(rows):
        y = panel.values[row, panel.starts[row] :]
        if len(y) < settings.min_history_days:
            reason = (
                f"history has {len(y)} complete days, fewer than min_history_days="
                f"{settings.min_history_days}"
            )
        else:
            reason = (
                f"history has {len(y)} complete days, fewer than the {MIN_BATCH_DAYS} that "
                "the batched models need"
            )
        if panel.starts[row] > 0 and end > len(y):
            reason += " (days before the first spend are not counted)"
        model = MODELS.create(FALLBACK_MODEL).fit(y)
        prediction = model.predict(horizon, LEVELS)
        output.mean[row] = prediction.mean
        for level in LEVELS:
            output.lower[level][row] = prediction.lower[level]
            output.upper[level][row] = prediction.upper[level]
        output.models[row] = model.alias
        output.versions[row] = model.version
        output.params[row] = {**model.fitted_params(), "calibration": {"applied": False}}
        output.fallback_reasons[row] = reason
        if count < MAX_LOGGED_FALLBACKS:
            logger.warning(
                "forecast series %s: using model %s because %s",
                panel.ids[row],
                FALLBACK_MODEL,
                reason,
            )
    if len(rows) > MAX_LOGGED_FALLBACKS:
        logger.warning(
            "forecast batch: %d more series use model %s because their history is short",
            len(rows) - MAX_LOGGED_FALLBACKS,
            FALLBACK_MODEL,
        )


def _forecast_rows(
    panel: _Panel, rows: np.ndarray, horizon: int, options: BatchOptions, output: _Output
) -> np.ndarray:
    """Run stages 3 to 7 on the given rows and return the start column each was fitted from."""
    values = panel.values[rows]
    starts = panel.starts[rows]
    end = values.shape[1]
    shifts = None
    if options.change_points:
        shifts = detect_level_shifts(values, starts, options)
        values, starts = apply_level_shifts(values, starts, shifts)

    effects = None
    if options.month_end:
        effects = estimate_month_end(values, starts, panel.first_day, options)
        values = remove_effects(values, effects, panel.first_day)

    folds = run_folds(values, starts, options)
    selection = select_models(values, starts, folds, options.selection_margin)
    mean, sd, ratios, model_params = _fit_chosen(values, starts, selection, horizon, options)
    if effects is not None:
        first_forecast_day = panel.first_day + timedelta(days=end)
        mean += future_effects(effects, first_forecast_day, horizon)

    if options.calibrate:
        horizons = calib.calibration_horizons(horizon)
        scaled = fold_errors(values, folds, selection, horizons, ratios)
        calibration = calib.calibrate(scaled, horizons, horizon)
    else:
        calibration = calib.gaussian(len(rows), horizon, "calibration is turned off")

    output.mean[rows] = mean
    for level in LEVELS:
        output.lower[level][rows] = mean + sd * calibration.lower[level]
        output.upper[level][rows] = mean + sd * calibration.upper[level]
    aliases = [BATCH_MODELS.spec(name).factory.alias for name in selection.candidates]
    for k, row in enumerate(rows):
        output.models[row] = aliases[int(selection.chosen[k])]
        output.versions[row] = BATCH_VERSION
        output.params[row] = {
            **model_params[k],
            "selection": selection.params(k),
            "change_point": shift_params(shifts, k, panel.first_day) if shifts else None,
            "month_end": month_end_params(effects, k) if effects else None,
            "calibration": calibration.params(k),
        }
    return starts


def _fit_chosen(
    values: np.ndarray,
    starts: np.ndarray,
    selection: Selection,
    horizon: int,
    options: BatchOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, object]]]:
    """Refit each series' chosen model on its whole history and forecast.

    Returns the mean and the sd of each forecast day, the sd already multiplied by the
    weekday ratio of that day, the weekday ratios, and the fitted parameters.
    """
    n, end = values.shape
    mean = np.empty((n, horizon))
    sd = np.empty((n, horizon))
    one_step = np.full((n, end), np.nan)
    model_params: list[dict[str, object]] = [{} for _ in range(n)]
    first = int(starts.min())

    for name, rows in chosen_rows(selection).items():
        ends = np.full(len(rows), end, dtype=np.int64)
        fitted = fit_models([name], values[rows], starts[rows], ends, options.model_options)[name]
        mean[rows], sd[rows] = fitted.forecast(horizon)
        one_step[rows, first + 1 :] = fitted.origin_forecasts(first, np.array([1]))[:, :-1, 0]
        for k, row in enumerate(rows):
            model_params[row] = fitted.params(k)

    ratios = calib.weekday_ratios(values, starts, one_step)
    keys = (end + np.arange(horizon)) % SEASON
    return mean, sd * ratios[:, keys], ratios, model_params


def _fit_yearly(
    values_2d: np.ndarray, rows: np.ndarray, horizon: int, options: BatchOptions, output: _Output
) -> dict[int, int]:
    """Forecast the long series where the yearly regression wins; return their history days."""
    if not rows.size:
        return {}

    values = np.array(values_2d, dtype=np.float64)[:, -options.yearly_history_days :]
    result = yearly_stage(values, rows, horizon, options)
    for k, row in enumerate(result.rows):
        output.mean[row] = result.mean[k]
        for level in LEVELS:
            output.lower[level][row] = result.lower[level][k]
            output.upper[level][row] = result.upper[level][k]
        output.models[row] = YEARLY_ALIAS
        output.versions[row] = BATCH_VERSION
        output.params[row] = result.params[k]
    return {int(row): int(days) for row, days in zip(result.rows, result.history_days, strict=True)}


def _adjust_intervals(output: _Output, adjustment: IntervalAdjustment) -> None:
    """Scale every row's intervals by the backtest adjustment and record it in the params."""
    output.lower, output.upper = apply_adjustment(
        output.mean, output.lower, output.upper, adjustment
    )
    record = adjustment.audit()
    for params in output.params:
        params["interval_adjustment"] = record


def _model_counts(models: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for model in models:
        counts[model] = counts.get(model, 0) + 1
    return dict(sorted(counts.items()))

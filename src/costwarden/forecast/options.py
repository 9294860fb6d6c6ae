"""Options of the batched forecaster: candidates, holdout, change points, month end, calibration."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from costwarden.forecast.adjustment import IntervalAdjustment

DEFAULT_CANDIDATES = ("ets", "theta", "ensemble", "seasonal-naive")
"""Candidates in order of preference: ETS is kept unless another is clearly better."""


class BatchOptions(BaseModel):
    """Options of ``forecast_batch``: model choice, history adjustments and calibration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    candidates: tuple[str, ...] = Field(
        DEFAULT_CANDIDATES,
        min_length=1,
        description="Registry names of the batched models compared on the holdout. On equal "
        "scores the earlier name wins.",
    )
    selection_margin: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="The first candidate is kept unless another one's holdout MASE is lower by "
        "more than this share of its own.",
    )
    model_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per model name, for its settings class."
    )
    holdout_days: int = Field(
        14,
        ge=7,
        description="Days held out per fold to score the candidates; series shorter than four "
        "times this hold out a quarter of their days, at least 7.",
    )
    holdout_folds: int = Field(
        2,
        ge=1,
        le=12,
        description="Rolling origins, each holding out the holdout days before the previous "
        "one. More folds make the choice and the calibration steadier and cost one fit each.",
    )
    calibrate: bool = Field(
        True,
        description="Replace the models' Gaussian intervals with empirical quantiles of past "
        "forecast errors.",
    )
    change_points: bool = Field(True, description="Detect a lasting level shift per series.")
    change_point_threshold: float = Field(
        7.0, gt=0, description="Smallest level shift detected, in units of the noise scale."
    )
    change_point_min_relative: float = Field(
        0.1, ge=0, description="Smallest level shift detected, as a share of the typical level."
    )
    change_point_min_days: int = Field(
        28,
        ge=14,
        description="Days after a shift needed to fit on them alone; with fewer, the earlier "
        "history is moved to the new level instead.",
    )
    month_end: bool = Field(True, description="Estimate a spend effect on the last days of months.")
    month_end_days: int = Field(3, ge=1, le=7, description="Last days of a month with an effect.")
    month_end_min_months: int = Field(
        3, ge=2, description="Month ends in the history needed to estimate the effect."
    )

    yearly: bool = Field(
        True,
        description="Fit a trend, yearly and weekday regression to series with at least "
        "yearly_min_days of spend, and keep it where it beats the weekly models.",
    )
    yearly_min_days: int = Field(
        730, ge=730, description="Days of spend a series needs for the yearly regression."
    )
    yearly_history_days: int = Field(
        3660, ge=730, description="Days of history the yearly regression reads at most."
    )
    yearly_order: int = Field(10, ge=1, le=30, description="Sine and cosine pairs of the year.")
    yearly_knot_days: int = Field(
        90,
        ge=14,
        description="Days between the points where the trend's slope may change; 90 gives about "
        "as many as Prophet's default 25 on eight years.",
    )
    yearly_trend_penalty: float = Field(
        1.0,
        gt=0,
        description="Ridge penalty on the slope changes; higher keeps the trend straighter.",
    )
    yearly_folds: int = Field(
        3, ge=1, description="Past periods on which the regression and the weekly models compete."
    )
    yearly_fold_days: int = Field(30, ge=7, description="Days of each of those periods.")

    interval_adjustment: IntervalAdjustment | None = Field(
        None,
        description="Factors fitted by a backtest that scale every interval's distance from the "
        "mean; set from the store by the budget pass, not usually by hand.",
    )

    @model_validator(mode="after")
    def _check_candidates(self) -> Self:
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError(f"candidates must not repeat a name, got {list(self.candidates)}")
        if self.candidates == DEFAULT_CANDIDATES and not self.model_options:
            return self

        # Imported here because the registry loads the numba kernels, which the defaults skip.
        from costwarden.forecast.candidates import BATCH_MODELS

        names = BATCH_MODELS.names()
        unknown = [name for name in [*self.candidates, *self.model_options] if name not in names]
        if unknown:
            raise ValueError(
                f"unknown candidate model {unknown[0]!r}; choose from {', '.join(sorted(names))}"
            )
        for name, options in self.model_options.items():
            settings_class = BATCH_MODELS.spec(name).settings_class
            try:
                settings_class(**options)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                    for error in exc.errors()
                )
                raise ValueError(f"model_options.{name}: {problems}") from None
        return self

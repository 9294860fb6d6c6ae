"""A univariate streaming anomaly detector: scores each point from that point and earlier ones.

For every point, the detector checks whether the series just broke out of the range it kept over
its recent history (``history_points``, 6,000 points by default). It tracks three kinds of
derived series, called channels:

* the raw value, in both directions, for spikes, drops and level shifts;
* rolling medians over a few window lengths, upwards only, for sustained rises that no single
  point makes extreme;
* the seasonal residual (the value minus the value one season earlier, averaged over a few
  points), in both directions, for a daily pattern that breaks.

For a channel value ``y`` with window median ``m`` and maximum ``M``, the upward breakout ratio
is ``(y - m) / (M - m)``: 1 means level with the highest value of the window and 1.2 means 20%
beyond it. Each range is at least ``spread_multiple`` robust spreads (interquartile range /
1.349), so quiet or quantised series do not turn noise into breakouts. The point's score uses its
largest ratio, raised by ``agreement_bonus`` for every further channel that also breaks out. That
ratio is kept only when it tops the ratios of the last ``local_max_points`` points and no alarm of
at least ``refractory_ratio`` fired in the last ``refractory_points`` points. The score is
``ratio / (1 + ratio)``, in [0, 1); 0.5 is a tie with the window's extreme.

Scores are comparable across series, so one threshold serves many series. On the Numenta
Anomaly Benchmark, ``bench/nab.py`` measures this detector and chooses that threshold.

NOTE: after a level shift, the new level's own noise can set new highs against the old median
until the window fills with the new level, so one shift may raise a few alarms after the first.
Each detector keeps about 100 KB per 1,000 ``history_points`` (0.6 MB with the defaults).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from costwarden.anomaly import stream_kernels as kernels

DETECTOR_NAME = "breakout"


class StreamingSettings(BaseModel):
    """Settings of ``StreamingDetector``. The defaults are the ones measured on NAB."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    history_points: int = Field(
        6000,
        ge=50,
        le=100_000,
        description="Points each channel remembers to set its median, spread and extremes.",
    )
    level_windows: tuple[int, ...] = Field(
        (3, 9, 27, 81),
        description="Lengths in points of the rolling medians watched for sustained rises.",
    )
    spread_multiple: float = Field(
        5.0,
        gt=0.0,
        description="A channel's range counts as at least this many robust spreads.",
    )
    level_spread_floor: float = Field(
        0.3,
        ge=0.0,
        description="Lowest spread of a rolling-median channel, as a share of the raw spread "
        "divided by the square root of the window length.",
    )
    seasonal_spread_floor: float = Field(
        0.1,
        ge=0.0,
        description="Lowest spread of the seasonal channel, as a share of the raw spread.",
    )
    min_history_points: int = Field(
        20, ge=2, description="Points a channel needs before it can break out."
    )
    season: dt.timedelta | None = Field(
        dt.timedelta(days=1),
        description="Length of the seasonal cycle. None turns the seasonal channel off.",
    )
    season_points: int | None = Field(
        None,
        ge=2,
        description="Season length in points, for series without timestamps. It overrides "
        "the length learned from the timestamps.",
    )
    max_season_points: int = Field(
        10_080,
        ge=2,
        description="Maximum season length in points. A longer season turns the seasonal "
        "channel off.",
    )
    interval_sample_points: int = Field(
        100,
        ge=1,
        description="Sampling intervals whose median converts the season into points.",
    )
    seasonal_smoothing_points: int = Field(
        4, ge=1, description="Points averaged in the seasonal residual."
    )
    seasonal_exponent: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Power applied to seasonal ratios. Below 1, a seasonal breakout must reach "
        "further beyond the range before it counts.",
    )
    agreement_bonus: float = Field(
        0.1,
        ge=0.0,
        description="Relative increase of the ratio for each further channel breaking out.",
    )
    local_max_points: int = Field(
        100, ge=1, description="A ratio must top the ratios of this many previous points."
    )
    refractory_points: int = Field(
        100, ge=0, description="Points after an alarm during which nothing else is reported."
    )
    refractory_ratio: float = Field(
        1.05, gt=0.0, description="Smallest reported ratio that starts the refractory period."
    )

    @model_validator(mode="after")
    def _valid_windows(self) -> Self:
        windows = self.level_windows
        if any(length < 2 for length in windows) or list(windows) != sorted(set(windows)):
            raise ValueError(
                f"level_windows must be distinct increasing lengths of at least 2, got {windows}"
            )
        if windows and windows[-1] >= self.history_points:
            raise ValueError(
                f"the maximum level window ({windows[-1]}) must be shorter than history_points "
                f"({self.history_points})"
            )
        if self.min_history_points > self.history_points:
            raise ValueError(
                f"min_history_points ({self.min_history_points}) exceeds history_points "
                f"({self.history_points})"
            )
        if self.season_points is not None and self.season_points > self.max_season_points:
            raise ValueError(
                f"season_points ({self.season_points}) exceeds max_season_points "
                f"({self.max_season_points}); raise max_season_points"
            )
        return self


class StreamingDetector:
    """Score points one at a time, each from that point and the points before it.

    ``update`` and ``score_series`` share one state: scoring a series in one call gives the same
    scores as feeding its points to ``update`` one by one, and either may follow the other.
    """

    name = DETECTOR_NAME

    def __init__(self, settings: StreamingSettings | None = None) -> None:
        self.settings = settings or StreamingSettings()
        self._parameters = _parameters(self.settings)
        self._state = self._new_state()

    def _new_state(self) -> kernels.DetectorState:
        settings = self.settings
        return kernels.new_state(
            channels=len(settings.level_windows) + 2,
            history_points=settings.history_points,
            levels=self._parameters.levels,
            max_season_points=settings.max_season_points,
            smoothing_points=settings.seasonal_smoothing_points,
            local_max_points=settings.local_max_points,
            interval_sample=settings.interval_sample_points,
        )

    @property
    def points_seen(self) -> int:
        """Number of finite values scored so far."""
        return int(self._state.counters[kernels.POINTS])

    @property
    def season_points(self) -> int | None:
        """Season length in points once it is known, or None while unknown or off."""
        season = int(self._state.counters[kernels.SEASON])
        return season if season > 0 else None

    def reset(self) -> None:
        """Forget every point seen."""
        self._state = self._new_state()

    def update(self, timestamp: Any, value: float) -> float:
        """Score one point and add it to the history.

        ``timestamp`` is a ``datetime`` (naive ones are read as UTC), a ``numpy.datetime64``,
        a pandas ``Timestamp``, or None. A NaN or infinite value scores 0 and is not remembered.
        """
        seconds = _seconds(timestamp)
        return float(kernels.step(self._state, self._parameters, seconds, float(value)))

    def score_series(
        self, values: Sequence[float] | np.ndarray, timestamps: Any = None
    ) -> np.ndarray:
        """Score a series in order, continuing from the points already seen.

        ``timestamps``, when given, has one entry per value: ``datetime64`` values or anything
        ``pandas.to_datetime`` accepts. Naive timestamps are read as UTC.
        """
        array = np.ascontiguousarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise ValueError(f"values must be one-dimensional, got shape {array.shape}")
        seconds = _seconds_array(timestamps, array.size)
        return kernels.run(self._state, self._parameters, seconds, array)


def score_series(
    values: Sequence[float] | np.ndarray,
    timestamps: Any = None,
    settings: StreamingSettings | None = None,
) -> np.ndarray:
    """Score a whole series with a fresh ``StreamingDetector``."""
    return StreamingDetector(settings).score_series(values, timestamps)


def _parameters(settings: StreamingSettings) -> kernels.Parameters:
    levels = np.array(settings.level_windows, dtype=np.int64)
    floor_share = np.concatenate(
        ([0.0], settings.level_spread_floor / np.sqrt(levels), [settings.seasonal_spread_floor])
    )
    exponent = np.ones(levels.size + 2)
    exponent[-1] = settings.seasonal_exponent
    two_sided = np.zeros(levels.size + 2, dtype=np.bool_)
    two_sided[0] = two_sided[-1] = True

    floats = np.zeros(4)
    floats[kernels.SPREAD_MULTIPLE] = settings.spread_multiple
    floats[kernels.AGREEMENT_BONUS] = settings.agreement_bonus
    floats[kernels.REFRACTORY_RATIO] = settings.refractory_ratio
    floats[kernels.SEASON_SECONDS] = (
        settings.season.total_seconds() if settings.season is not None else math.nan
    )
    ints = np.zeros(3, dtype=np.int64)
    ints[kernels.MIN_HISTORY] = settings.min_history_points
    ints[kernels.REFRACTORY_POINTS] = settings.refractory_points
    ints[kernels.FIXED_SEASON] = settings.season_points or 0
    return kernels.Parameters(levels, floor_share, exponent, two_sided, floats, ints)


def _seconds(timestamp: Any) -> float:
    """Convert one timestamp to seconds since the Unix epoch, or NaN for None."""
    if timestamp is None:
        return math.nan
    if isinstance(timestamp, dt.datetime):
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=dt.UTC)
        return timestamp.timestamp()
    if isinstance(timestamp, np.datetime64):
        if np.isnat(timestamp):
            return math.nan
        return float(timestamp.astype("datetime64[ns]").astype(np.int64)) / 1e9
    return float(_seconds_array([timestamp], 1)[0])


def _seconds_array(timestamps: Any, size: int) -> np.ndarray:
    """Convert timestamps to seconds since the Unix epoch; naive ones are read as UTC."""
    if timestamps is None:
        return np.full(size, math.nan)
    try:
        index = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"timestamps must be datetime-like ({exc})") from exc
    if index.size != size:
        raise ValueError(f"{index.size} timestamps for {size} values; pass one per value")
    seconds = index.asi8 / 1e9
    seconds[index.isna()] = math.nan
    return seconds

"""Univariate scorers for usage series: each day gets a score in [0, 1] from earlier days only.

``default_scorer`` returns ``StreamingScorer``, the streaming detector of
``costwarden.anomaly.streaming`` set up for daily points, when that module is installed, and
otherwise ``RobustZScorer``. Both have the ``SeriesScorer`` interface.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

MAD_TO_SD = 1.4826


class SeriesScorer(Protocol):
    """Scores each point of a series from the points before it, in [0, 1]."""

    name: str

    def score_series(self, values: np.ndarray) -> np.ndarray: ...


class RobustZScorer:
    """Robust z-score of each day against the median and MAD of the ``window`` days before it.

    The score is ``1 - exp(-z**2 / (2 * z_scale**2))`` for a rise and 0 otherwise, so 0.9 is a
    rise of about ``2.15 * z_scale`` noise scales (6.4 with the default ``z_scale`` of 3). The
    noise scale is 1.4826 times the MAD, at least ``floor`` times the median, so a flat series
    does not score cent-sized changes.
    """

    name = "robust-z"

    def __init__(
        self, window: int = 14, min_days: int = 7, z_scale: float = 3.0, floor: float = 0.02
    ):
        self.window = window
        self.min_days = min_days
        self.z_scale = z_scale
        self.floor = floor

    def score_series(self, values: np.ndarray) -> np.ndarray:
        series = np.asarray(values, dtype=float)
        scores = np.zeros(len(series))
        for index in range(len(series)):
            past = series[max(index - self.window, 0) : index]
            past = past[np.isfinite(past)]
            if len(past) < self.min_days or not np.isfinite(series[index]):
                continue
            median = float(np.median(past))
            spread = MAD_TO_SD * float(np.median(np.abs(past - median)))
            spread = max(spread, self.floor * abs(median), 1e-9)
            z = max((series[index] - median) / spread, 0.0)
            scores[index] = 1.0 - np.exp(-(z**2) / (2 * self.z_scale**2))
        return scores


DAILY_STREAMING = {
    "min_history_points": 7,
    "season": None,
    "level_windows": (3, 9),
    "local_max_points": 7,
    "refractory_points": 7,
}
"""Streaming detector settings for daily points: a week of history before the first score, no
daily season (each point is a day), and short windows. The other settings keep their defaults."""


class StreamingScorer:
    """The streaming detector of ``costwarden.anomaly.streaming`` behind ``SeriesScorer``.

    Its score is ``ratio / (1 + ratio)``, where the ratio compares the point's distance above the
    recent median with the recent range, so 0.9 is a point nine ranges beyond it.
    """

    name = "streaming"

    def __init__(self, settings: object) -> None:
        self._settings = settings

    def score_series(self, values: np.ndarray) -> np.ndarray:
        from costwarden.anomaly.streaming import score_series

        series = np.asarray(values, dtype=float)
        return np.clip(score_series(series, settings=self._settings), 0.0, 1.0)  # type: ignore[arg-type]


def default_scorer() -> SeriesScorer:
    """Return the streaming detector for daily points when it is installed, else
    ``RobustZScorer``."""
    try:
        from costwarden.anomaly.streaming import StreamingSettings
    except ImportError:
        logger.debug("costwarden.anomaly.streaming is not installed; using the robust z-score")
        return RobustZScorer()
    return StreamingScorer(StreamingSettings(**DAILY_STREAMING))

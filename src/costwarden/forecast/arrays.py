"""NaN-aware reductions that return NaN for an empty slice instead of warning.

NumPy's ``nanmedian`` and ``nanmean`` warn on a slice with no numbers. In a batch that is a
normal case (a series too short for a horizon), and the tests turn warnings into errors.
"""

from __future__ import annotations

import numpy as np


def count_finite(values: np.ndarray, axis: int) -> np.ndarray:
    return np.sum(np.isfinite(values), axis=axis)


def nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Return the mean of the finite values along ``axis``, NaN where there are none."""
    finite = np.isfinite(values)
    total = np.sum(np.where(finite, values, 0.0), axis=axis)
    count = np.sum(finite, axis=axis)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def nanmedian(values: np.ndarray, axis: int) -> np.ndarray:
    """Return the median of the finite values along ``axis``, NaN where there are none."""
    moved = np.moveaxis(np.where(np.isfinite(values), values, np.nan), axis, -1)
    ordered = np.sort(moved, axis=-1)
    count = np.sum(np.isfinite(ordered), axis=-1)
    low = np.clip((count - 1) // 2, 0, None)[..., None]
    high = np.clip(count // 2, 0, None)[..., None]
    high = np.minimum(high, ordered.shape[-1] - 1)
    median = (
        0.5
        * (np.take_along_axis(ordered, low, axis=-1) + np.take_along_axis(ordered, high, axis=-1))[
            ..., 0
        ]
    )
    return np.where(count > 0, median, np.nan)

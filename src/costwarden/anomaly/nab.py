"""Scoring rules of the Numenta Anomaly Benchmark (NAB), written from their published description.

A NAB file is a ``timestamp,value`` series with labelled anomaly windows. A detector gives every
point a score in [0, 1], and a point is a detection when its score is at or above the threshold.

* Probation: the first ``min(floor(0.15 * n), 0.15 * 5000)`` points of a file are never scored.
* Windows: only the earliest detection in a window counts. It earns
  ``tp_weight * sigma(y) / sigma(-1)``, where ``y`` runs from -1 at the left edge of the window
  to ``-1 / width`` at its right edge, so a detection on the left edge earns exactly
  ``tp_weight``. A window without a detection costs ``fn_weight``.
* False positives: every detection outside a window adds ``fp_weight * sigma(y)``, which is
  negative. Before the first window ``sigma`` is -1; after a window ``y`` is the distance to its
  right edge divided by ``width - 1``, so a false positive right after a window costs little.
* ``sigma(y) = 2 / (1 + exp(5 y)) - 1``, and -1 when ``y > 3``.
* One threshold per cost profile is chosen for all files together: the one that maximises the
  summed raw score. The sum is normalised to ``100 * (S - S_null) / (S_perfect - S_null)``.
  The null detector never fires, and the perfect one earns ``tp_weight`` in every window.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from costwarden.errors import InputError

PROBATION_FRACTION = 0.15
PROBATION_CAP_ROWS = 5000
"""The probation is 15% of a file, but never more than 15% of 5,000 rows (750 rows)."""

PROFILE_NAMES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


@dataclass(frozen=True, slots=True)
class CostProfile:
    """The weights of one NAB cost profile, as in NAB's ``profiles.json``."""

    name: str
    tp_weight: float
    fn_weight: float
    fp_weight: float


@dataclass(frozen=True, slots=True, eq=False)
class LabelledSeries:
    """One NAB data file with its anomaly windows as inclusive row-index pairs."""

    name: str
    timestamps: np.ndarray
    values: np.ndarray
    windows: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True, eq=False)
class PointRewards:
    """Rewards of a detection on each scorable point of a file: what it adds to the raw score.

    ``window[i]`` is the index of the window that point ``i`` lies in, or -1 outside windows.
    Probationary points are left out: ``offset`` is the row index of the first scored point.
    """

    offset: int
    reward: np.ndarray
    window: np.ndarray
    n_windows: int


@dataclass(frozen=True, slots=True)
class FileScore:
    """The raw NAB score of one file at one threshold, with its window and point counts."""

    name: str
    raw: float
    detected_windows: int
    missed_windows: int
    false_positives: int


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """The corpus-wide result of one profile at its best threshold."""

    profile: CostProfile
    threshold: float
    raw: float
    null: float
    perfect: float
    normalised: float
    files: tuple[FileScore, ...]


def load_profiles(path: Path) -> dict[str, CostProfile]:
    """Read NAB's ``profiles.json`` into cost profiles keyed by name."""
    try:
        document = json.loads(path.read_text())
        return {
            name: CostProfile(
                name=name,
                tp_weight=float(entry["CostMatrix"]["tpWeight"]),
                fn_weight=float(entry["CostMatrix"]["fnWeight"]),
                fp_weight=float(entry["CostMatrix"]["fpWeight"]),
            )
            for name, entry in document.items()
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: not a NAB profiles file with tpWeight, fnWeight and fpWeight per profile "
            f"({exc})"
        ) from exc


def load_corpus(root: Path, names: Iterable[str] | None = None) -> list[LabelledSeries]:
    """Read the NAB files listed in ``root/labels/combined_windows.json`` from ``root/data``.

    ``names`` restricts the corpus to those relative paths (for example
    ``realTweets/Twitter_volume_AAPL.csv``); by default every labelled file is read.
    """
    labels_path = root / "labels" / "combined_windows.json"
    try:
        labels: dict[str, list[list[str]]] = json.loads(labels_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{labels_path}: cannot read the NAB window labels ({exc})") from exc

    selected = sorted(labels) if names is None else list(names)
    unknown = [name for name in selected if name not in labels]
    if unknown:
        raise InputError(f"{labels_path}: no windows for {', '.join(unknown)}; check the names")
    return [_read_series(root / "data" / name, name, labels[name]) for name in selected]


def _read_series(path: Path, name: str, limits: Sequence[Sequence[str]]) -> LabelledSeries:
    try:
        frame = pd.read_csv(path)
        timestamps = pd.to_datetime(frame["timestamp"]).to_numpy()
        values = frame["value"].to_numpy(dtype=np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(
            f"{path}: expected a CSV file with columns timestamp,value ({exc})"
        ) from exc

    windows = []
    for start, end in limits:
        left = int(np.searchsorted(timestamps, np.datetime64(pd.Timestamp(start)), "left"))
        right = int(np.searchsorted(timestamps, np.datetime64(pd.Timestamp(end)), "right")) - 1
        if right < left:
            raise InputError(f"{path}: window {start} to {end} contains no row of the file")
        windows.append((left, right))
    return LabelledSeries(name, timestamps, values, tuple(windows))


def probation_length(length: int) -> int:
    """Return the number of leading rows of a file that are never scored."""
    return int(
        min(math.floor(PROBATION_FRACTION * length), PROBATION_FRACTION * PROBATION_CAP_ROWS)
    )


def scaled_sigmoid(position: np.ndarray | float) -> np.ndarray:
    """NAB's reward curve: +0.987 at -1, 0 at 0, towards -1 after, and -1 beyond 3."""
    position = np.asarray(position, dtype=np.float64)
    value = 2.0 / (1.0 + np.exp(5.0 * np.minimum(position, 50.0))) - 1.0
    return np.where(position > 3.0, -1.0, value)


def point_rewards(
    length: int, windows: Sequence[tuple[int, int]], profile: CostProfile
) -> PointRewards:
    """Compute the reward of a detection on every scorable point of a file."""
    reward = np.full(length, -profile.fp_weight)
    window = np.full(length, -1, dtype=np.int64)
    max_tp = float(scaled_sigmoid(-1.0))
    index = np.arange(length)

    for number, (left, right) in enumerate(windows):
        width = right - left + 1
        inside = index[left : right + 1]
        reward[left : right + 1] = (
            profile.tp_weight * scaled_sigmoid(-(right - inside + 1) / width) / max_tp
        )
        window[left : right + 1] = number

        following_end = windows[number + 1][0] if number + 1 < len(windows) else length
        after = index[right + 1 : following_end]
        distance = (after - right) / max(width - 1, 1)
        reward[right + 1 : following_end] = profile.fp_weight * scaled_sigmoid(distance)

    offset = probation_length(length)
    return PointRewards(offset, reward[offset:], window[offset:], len(windows))


def score_file(
    scores: np.ndarray, rewards: PointRewards, threshold: float, fn_weight: float, name: str = ""
) -> FileScore:
    """Score one file's anomaly scores at a fixed threshold."""
    fired = np.asarray(scores, dtype=np.float64)[rewards.offset :] >= threshold
    outside = rewards.window < 0
    false_positive = fired & outside
    raw = float(rewards.reward[false_positive].sum())

    detected = 0
    for number in range(rewards.n_windows):
        hits = fired & (rewards.window == number)
        if hits.any():
            raw += float(rewards.reward[hits].max())
            detected += 1
        else:
            raw -= fn_weight
    missed = rewards.n_windows - detected
    return FileScore(name, raw, detected, missed, int(false_positive.sum()))


def best_threshold(
    scores: Sequence[np.ndarray], rewards: Sequence[PointRewards], fn_weight: float
) -> tuple[float, float]:
    """Find the threshold with the highest raw score summed over all files.

    Every distinct score is tried as a threshold, and so is "never fire" (returned as
    ``inf``). Returns the threshold and its raw score; on ties the highest threshold wins.
    """
    points, reward, window, n_windows = _pool(scores, rewards)
    order = np.argsort(-points, kind="stable")
    points, reward, window = points[order], reward[order], window[order]
    gain = np.where(window < 0, reward, 0.0) + _window_gain(reward, window, fn_weight)

    baseline = -fn_weight * n_windows
    totals = baseline + np.cumsum(gain)
    run_ends = np.flatnonzero(np.append(points[1:] != points[:-1], True))
    if run_ends.size == 0:
        return math.inf, baseline

    best = run_ends[int(np.argmax(totals[run_ends]))]
    if totals[best] <= baseline:
        return math.inf, baseline
    return float(points[best]), float(totals[best])


def _pool(
    scores: Sequence[np.ndarray], rewards: Sequence[PointRewards]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Concatenate the scorable points of every file, with windows numbered corpus-wide."""
    if len(scores) != len(rewards):
        raise ValueError(f"{len(scores)} score arrays for {len(rewards)} files")
    points, reward, window = [], [], []
    n_windows = 0
    for file_scores, file_rewards in zip(scores, rewards, strict=True):
        file_scores = np.asarray(file_scores, dtype=np.float64)
        if file_scores.shape != (file_rewards.offset + file_rewards.reward.size,):
            raise ValueError(
                f"{file_scores.size} scores for a file of "
                f"{file_rewards.offset + file_rewards.reward.size} rows"
            )
        points.append(file_scores[file_rewards.offset :])
        reward.append(file_rewards.reward)
        window.append(np.where(file_rewards.window < 0, -1, file_rewards.window + n_windows))
        n_windows += file_rewards.n_windows
    return np.concatenate(points), np.concatenate(reward), np.concatenate(window), n_windows


def _window_gain(reward: np.ndarray, window: np.ndarray, fn_weight: float) -> np.ndarray:
    """Return how much each point raises its window's best reward, in sweep order.

    A window starts at ``-fn_weight`` and takes the best reward among its detections, so each
    point adds the rise of its window's running maximum over the points swept before it.
    """
    gain = np.zeros(reward.size)
    positions = np.flatnonzero(window >= 0)
    if positions.size == 0:
        return gain

    grouped = positions[np.lexsort((positions, window[positions]))]
    group = window[grouped]
    span = float(reward[grouped].max() - reward[grouped].min()) + fn_weight + 1.0
    # Shifting each window's rewards above every earlier window's turns one running maximum
    # over the grouped points into a running maximum per window.
    shifted = np.maximum.accumulate(reward[grouped] + group * span) - group * span
    first = np.append(True, group[1:] != group[:-1])
    previous = np.where(first, -fn_weight, np.append(-fn_weight, shifted[:-1]))
    gain[grouped] = shifted - previous
    return gain


def score_corpus(
    scores: Mapping[str, np.ndarray],
    corpus: Sequence[LabelledSeries],
    profiles: Iterable[CostProfile],
) -> dict[str, ProfileResult]:
    """Tune one threshold per profile over all files and score the corpus with it."""
    results = {}
    for profile in profiles:
        rewards = [point_rewards(len(item.values), item.windows, profile) for item in corpus]
        arrays = [np.asarray(scores[item.name], dtype=np.float64) for item in corpus]
        threshold, raw = best_threshold(arrays, rewards, profile.fn_weight)

        files = tuple(
            score_file(array, reward, threshold, profile.fn_weight, item.name)
            for array, reward, item in zip(arrays, rewards, corpus, strict=True)
        )
        n_windows = sum(reward.n_windows for reward in rewards)
        null = -profile.fn_weight * n_windows
        perfect = profile.tp_weight * n_windows
        results[profile.name] = ProfileResult(
            profile, threshold, raw, null, perfect, normalise(raw, null, perfect), files
        )
    return results


def normalise(raw: float, null: float, perfect: float) -> float:
    """Map a raw score to NAB's scale, where the null detector is 0 and the perfect one 100."""
    if perfect == null:
        raise ValueError("the perfect and null scores are equal: the corpus has no windows")
    return 100.0 * (raw - null) / (perfect - null)

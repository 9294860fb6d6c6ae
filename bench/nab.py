"""Benchmark the streaming anomaly detector on the Numenta Anomaly Benchmark (NAB).

Run from the repository root: ``.venv/bin/python bench/nab.py``. It scores every labelled NAB
file under ``--nab-dir`` in streaming mode: each point from that point and earlier ones, with
one set of settings for all files. It then applies NAB's scoring rules with the three cost
profiles, one threshold per profile tuned over all files together as NAB does. The Markdown
report puts the published detectors' scores on the same files beside ours, and ``--json PATH``
also writes the results as JSON.

``--cross-validate`` checks how much the chosen settings owe to this corpus. It splits the files
into two halves, alternating by name within each category. It tunes a small grid of settings on
one half and scores the winner on the other half.

The published scores come from ``derived_subset_normalized_scores.csv`` in the NAB directory,
subset ``all_but_realKnownCause``: NAB's normalisation recomputed from the upstream per-file raw
scores of each detector on the same files.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from costwarden.anomaly.nab import (
    PROFILE_NAMES,
    CostProfile,
    LabelledSeries,
    ProfileResult,
    load_corpus,
    load_profiles,
    score_corpus,
)
from costwarden.anomaly.streaming import DETECTOR_NAME, StreamingSettings, score_series

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NAB = Path(os.environ.get("COSTWARDEN_SHARED", ROOT.parent / "shared")) / "data" / "nab"
REFERENCE_FILE = "derived_subset_normalized_scores.csv"
REFERENCE_SUBSET = "all_but_realKnownCause"
PROFILE_LABELS = {
    "standard": "standard",
    "reward_low_FP_rate": "low FP",
    "reward_low_FN_rate": "low FN",
}

CV_GRID = {
    "level_windows": [(3, 9, 27), (3, 9, 27, 81), (3, 9, 27, 81, 243)],
    "spread_multiple": [4.5, 5.0, 5.5],
    "refractory_points": [50, 100, 150],
}
"""Settings tried in the cross-validation: the ones the score is most sensitive to."""


@dataclass(frozen=True)
class Timing:
    """Wall times of one run, in seconds."""

    first_call: float
    scoring: float
    points: int

    @property
    def microseconds_per_point(self) -> float:
        return 1e6 * self.scoring / max(self.points, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab-dir", type=Path, default=DEFAULT_NAB, help="NAB data directory")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    parser.add_argument(
        "--cross-validate",
        action="store_true",
        help=f"tune {grid_size()} settings on half the files and score the other half",
    )
    args = parser.parse_args()

    corpus = load_corpus(args.nab_dir)
    profiles = load_profiles(args.nab_dir / "profiles.json")
    chosen = [profiles[name] for name in PROFILE_NAMES]
    settings = StreamingSettings()

    timing, scores = run_detector(corpus, settings)
    results = score_corpus(scores, corpus, chosen)
    references = read_references(args.nab_dir / REFERENCE_FILE)
    folds = cross_validate(corpus, chosen) if args.cross_validate else None

    report = render(corpus, settings, results, references, timing, folds)
    print(report)
    if args.output:
        args.output.write_text(report)
    if args.json:
        document = to_json(corpus, settings, results, references, timing, folds)
        args.json.write_text(json.dumps(document, indent=2) + "\n")


def run_detector(
    corpus: list[LabelledSeries], settings: StreamingSettings
) -> tuple[Timing, dict[str, np.ndarray]]:
    """Score every file with a fresh detector; the first call also loads or compiles numba."""
    started = time.perf_counter()
    score_series(corpus[0].values[:10], corpus[0].timestamps[:10], settings)
    first_call = time.perf_counter() - started

    started = time.perf_counter()
    scores = {item.name: score_series(item.values, item.timestamps, settings) for item in corpus}
    scoring = time.perf_counter() - started
    points = sum(item.values.size for item in corpus)
    return Timing(first_call, scoring, points), scores


def read_references(path: Path) -> dict[str, dict[str, float]]:
    """Read the published detectors' normalised scores on the same files, by detector."""
    references: dict[str, dict[str, float]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["subset"] == REFERENCE_SUBSET:
                references[row["detector"]] = {name: float(row[name]) for name in PROFILE_NAMES}
    return references


def grid_size() -> int:
    return int(np.prod([len(values) for values in CV_GRID.values()]))


def cross_validate(corpus: list[LabelledSeries], profiles: list[CostProfile]) -> dict:
    """Tune the grid on each half of the files and score the winner on the other half."""
    halves = split_halves(corpus)
    table = []
    for combination in itertools.product(*CV_GRID.values()):
        values = dict(zip(CV_GRID, combination, strict=True))
        _, scores = run_detector(corpus, StreamingSettings(**values))
        by_half = [score_corpus(scores, half, profiles) for half in halves]
        table.append((values, by_half))

    default = next(by_half for values, by_half in table if is_default(values))
    return {
        "grid": {key: [jsonable(value) for value in values] for key, values in CV_GRID.items()},
        "halves": [[item.name for item in half] for half in halves],
        "folds": {
            profile.name: [fold_result(table, profile.name, train, 1 - train) for train in (0, 1)]
            for profile in profiles
        },
        "default_by_half": [
            {name: result.normalised for name, result in half.items()} for half in default
        ],
    }


def split_halves(corpus: list[LabelledSeries]) -> tuple[list, list]:
    """Split files into two halves, alternating by name within each NAB category."""
    halves: tuple[list, list] = ([], [])
    categories = sorted({item.name.split("/")[0] for item in corpus})
    for category in categories:
        members = sorted(
            (item for item in corpus if item.name.startswith(category + "/")),
            key=lambda item: item.name,
        )
        for index, item in enumerate(members):
            halves[index % 2].append(item)
    return halves


def fold_result(table: list, profile: str, train: int, test: int) -> dict:
    values, by_half = max(table, key=lambda entry: entry[1][train][profile].normalised)
    return {
        "tuned_on_half": train,
        "settings": {key: jsonable(value) for key, value in values.items()},
        "train_score": by_half[train][profile].normalised,
        "test_score": by_half[test][profile].normalised,
    }


def jsonable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def is_default(values: dict) -> bool:
    defaults = StreamingSettings()
    return all(getattr(defaults, key) == value for key, value in values.items())


def render(
    corpus: list[LabelledSeries],
    settings: StreamingSettings,
    results: dict[str, ProfileResult],
    references: dict[str, dict[str, float]],
    timing: Timing,
    folds: dict | None,
) -> str:
    n_windows = sum(len(item.windows) for item in corpus)
    lines = [
        "# NAB benchmark",
        "",
        *machine_lines(),
        f"- Corpus: {len(corpus)} files, {n_windows} windows, {timing.points:,} points",
        f"- Detector: `{DETECTOR_NAME}` with default `StreamingSettings()`",
        f"- Time: {timing.scoring:.1f} s for all files ({timing.microseconds_per_point:.1f} µs "
        f"per point); first call (numba load or compile) {timing.first_call:.1f} s",
        "",
        *score_table(results, references),
        "",
        *threshold_lines(results),
        "",
        *category_table(results["standard"]),
    ]
    if folds is not None:
        lines += ["", *fold_lines(folds)]
    return "\n".join(lines) + "\n"


def machine_lines() -> list[str]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in lscpu.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor() or "unknown CPU",
    )
    packages = ", ".join(f"{name} {version(name)}" for name in ("numpy", "numba", "pandas"))
    return [
        f"- Machine: {os.cpu_count()} CPUs, {model}",
        f"- Software: Python {platform.python_version()}, {packages}",
    ]


def score_table(
    results: dict[str, ProfileResult], references: dict[str, dict[str, float]]
) -> list[str]:
    ours = f"**costwarden {DETECTOR_NAME}**"
    rows = {ours: {name: result.normalised for name, result in results.items()}}
    rows.update(references)
    header = " | ".join(PROFILE_LABELS[name] for name in PROFILE_NAMES)
    lines = [f"| detector | {header} |", "|---|" + "---|" * len(PROFILE_NAMES)]
    for name, values in sorted(rows.items(), key=lambda item: -item[1]["standard"]):
        cells = " | ".join(f"{values[profile]:.2f}" for profile in PROFILE_NAMES)
        lines.append(f"| {name} | {cells} |")
    return lines


def threshold_lines(results: dict[str, ProfileResult]) -> list[str]:
    lines = []
    for name, result in results.items():
        detected = sum(item.detected_windows for item in result.files)
        false_positives = sum(item.false_positives for item in result.files)
        lines.append(
            f"- {PROFILE_LABELS[name]}: threshold {result.threshold:.4f}, raw score "
            f"{result.raw:.2f} (null {result.null:.0f}, perfect {result.perfect:.0f}), "
            f"{detected} windows detected, {false_positives} false-positive points"
        )
    return lines


def category_table(result: ProfileResult) -> list[str]:
    totals: dict[str, list[float]] = {}
    for item in result.files:
        row = totals.setdefault(item.name.split("/")[0], [0, 0, 0, 0.0])
        row[0] += item.detected_windows
        row[1] += item.missed_windows
        row[2] += item.false_positives
        row[3] += item.raw
    lines = [
        "Standard profile by category:",
        "",
        "| category | windows detected | missed | false-positive points | raw score |",
        "|---|---|---|---|---|",
    ]
    for category, (detected, missed, false_positives, raw) in sorted(totals.items()):
        lines.append(f"| {category} | {detected} | {missed} | {false_positives} | {raw:.2f} |")
    return lines


def fold_lines(folds: dict) -> list[str]:
    lines = [
        f"Cross-validation ({grid_size()} settings, two halves of the files; each half is "
        "scored with its own NAB threshold and normalisation):",
        "",
        "| profile | tuned on | chosen settings | train | test | defaults on test |",
        "|---|---|---|---|---|---|",
    ]
    for name, entries in folds["folds"].items():
        for entry in entries:
            test = 1 - entry["tuned_on_half"]
            default = folds["default_by_half"][test][name]
            chosen = ", ".join(f"{key}={value}" for key, value in entry["settings"].items())
            lines.append(
                f"| {PROFILE_LABELS[name]} | half {entry['tuned_on_half']} | {chosen} | "
                f"{entry['train_score']:.2f} | {entry['test_score']:.2f} | {default:.2f} |"
            )
    return lines


def to_json(
    corpus: list[LabelledSeries],
    settings: StreamingSettings,
    results: dict[str, ProfileResult],
    references: dict[str, dict[str, float]],
    timing: Timing,
    folds: dict | None,
) -> dict:
    return {
        "detector": DETECTOR_NAME,
        "settings": settings.model_dump(mode="json"),
        "files": len(corpus),
        "windows": sum(len(item.windows) for item in corpus),
        "points": timing.points,
        "timing_seconds": {"first_call": timing.first_call, "scoring": timing.scoring},
        "profiles": {name: profile_json(result) for name, result in results.items()},
        "references": {"subset": REFERENCE_SUBSET, "normalised": references},
        "cross_validation": folds,
    }


def profile_json(result: ProfileResult) -> dict:
    return {
        "weights": asdict(result.profile),
        "threshold": result.threshold if np.isfinite(result.threshold) else None,
        "raw": result.raw,
        "null": result.null,
        "perfect": result.perfect,
        "normalised": result.normalised,
        "files": [asdict(item) for item in result.files],
    }


if __name__ == "__main__":
    main()

"""Benchmark the daily anomaly pass: 10,000 scopes, detection and contributor ranking.

Run from the repository root: ``.venv/bin/python bench/anomaly.py``. It prints a Markdown report;
``--output FILE`` also writes it.

The input is synthetic and seeded: daily cost series of ``--scopes`` scopes over 70 days, each
the sum of six children (its namespaces) with a weekly pattern, noise, and a trend on some of
them. One scope in a hundred gets a planted anomaly in one child during the 14 checked days:
half of them one- or two-day spikes, half level shifts that last to the end.

Sections:

* pass: the robust baseline and run detection over every scope (``detect_runs``), then the
  contributor ranking of every anomaly over its children (``run_means``), as the anomaly pass
  runs them. The store reads and the events are left out. Wall time after a warm-up call, so
  that numba's compilation is not counted; the compile time with an empty cache is given apart.
* quality: planted anomalies found (right first day, give or take one, and right top child) and
  alerts on scopes without a planted anomaly, per 1,000 scope-days.
* alternative: the batched forecaster (``forecast_batch``) as the one-day-ahead expectation of
  every checked day, flagging days above the upper bound of its 95% interval with the same money
  and percentage minimums, against the robust baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import numpy as np

from costwarden.anomaly.detect import Detection, Thresholds, detect_runs
from costwarden.anomaly.rootcause import Window, run_means
from costwarden.config import AnomalySettings, ForecastSettings
from costwarden.forecast import forecast_batch

DAYS = 70
CHECKED = 14
FIRST = DAYS - CHECKED
CHILDREN = 6
PLANTED_SHARE = 0.01
LAST_DAY = date(2026, 11, 14)


@dataclass(frozen=True, slots=True)
class Planted:
    row: int
    child: int
    start: int
    end: int
    kind: str


@dataclass(frozen=True, eq=False)
class Panel:
    values: np.ndarray
    children: np.ndarray
    planted: dict[int, Planted]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scopes", type=int, default=10_000, help="scopes in the pass")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes; the best is kept")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    args = parser.parse_args()

    compile_seconds = compile_time()
    panel = synthetic(args.scopes, args.seed)
    settings = AnomalySettings()
    thresholds = Thresholds.from_settings(settings)
    timings, detection, rankings = timed_pass(panel, thresholds, settings, args.repeats)

    lines = [
        "## Anomaly pass",
        "",
        *machine_lines(),
        "",
        *pass_section(args.scopes, timings, compile_seconds, detection),
        "",
        *quality_section(panel, detection, rankings),
        "",
        *alternative_section(panel, thresholds, settings),
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        args.output.write_text(report)


def synthetic(scopes: int, seed: int) -> Panel:
    """Return seeded scope series, their children, and the planted anomalies."""
    rng = np.random.default_rng(seed)
    day = np.arange(DAYS)
    weekend = ((LAST_DAY - timedelta(days=DAYS - 1)).weekday() + day) % 7 >= 5
    level = np.exp(rng.normal(np.log(300.0), 1.0, scopes))
    dip = np.where(rng.random(scopes) < 0.6, rng.uniform(0.6, 0.95, scopes), 1.0)
    trend = np.where(rng.random(scopes) < 0.3, rng.normal(0.0, 0.003, scopes), 0.0)
    shares = rng.dirichlet(np.full(CHILDREN, 2.0), scopes)
    noise = rng.uniform(0.02, 0.06, scopes)

    base = level[:, None] * np.where(weekend, dip[:, None], 1.0) * (1.0 + trend[:, None] * day)
    children = base[:, None, :] * shares[:, :, None]
    children = children * (1.0 + noise[:, None, None] * rng.standard_normal(children.shape))
    children = np.clip(children, 0.0, None)

    planted = {}
    for row in rng.choice(scopes, int(scopes * PLANTED_SHARE), replace=False):
        planted[int(row)] = _plant(rng, children, int(row), level[row])
    return Panel(children.sum(axis=1), children, planted)


def _plant(rng: np.random.Generator, children: np.ndarray, row: int, level: float) -> Planted:
    child = int(rng.integers(CHILDREN))
    start = int(rng.integers(FIRST + 1, DAYS - 1))
    spike = rng.random() < 0.5
    end = min(start + int(rng.integers(0, 2)), DAYS - 1) if spike else DAYS - 1
    extra = level * rng.uniform(0.5, 2.0) + 60.0
    children[row, child, start : end + 1] += extra
    return Planted(row, child, start, end, "spike" if spike else "level_shift")


def timed_pass(
    panel: Panel, thresholds: Thresholds, settings: AnomalySettings, repeats: int
) -> tuple[dict[str, float], Detection, dict[int, int]]:
    """Run the pass ``repeats`` times after a warm-up and return the best step times."""
    detect(panel.values[:50], thresholds, settings)
    best: dict[str, float] = {}
    detection, rankings = None, {}
    for _ in range(repeats):
        started = time.perf_counter()
        detection = detect(panel.values, thresholds, settings)
        detected = time.perf_counter()
        rankings = rank_contributors(panel, detection, settings)
        ranked = time.perf_counter()
        for step, seconds in (
            ("detection", detected - started),
            ("ranking", ranked - detected),
            ("total", ranked - started),
        ):
            best[step] = min(best.get(step, float("inf")), seconds)
    assert detection is not None
    return best, detection, rankings


def detect(values: np.ndarray, thresholds: Thresholds, settings: AnomalySettings) -> Detection:
    return detect_runs(
        values,
        FIRST,
        thresholds,
        baseline_days=settings.baseline_days,
        season_weeks=settings.season_weeks,
        min_history_days=settings.min_history_days,
        scale_floor=settings.scale_floor,
    )


def rank_contributors(
    panel: Panel, detection: Detection, settings: AnomalySettings
) -> dict[int, int]:
    """Return the top child of every run, keyed by the run's row, as the root cause ranks them."""
    tops = {}
    for run in detection.runs:
        window = Window(
            run.start, run.end, settings.baseline_days, settings.season_weeks, settings.scale_floor
        )
        children = {child: panel.children[run.row, child] for child in range(CHILDREN)}
        means = run_means(children, window)
        tops[run.row] = max(means, key=lambda child: means[child].delta)
    return tops


def compile_time() -> float:
    """Return the wall time of a fresh process's first pass with an empty numba cache."""
    code = (
        "import time, numpy as np\n"
        "from costwarden.anomaly.baseline import fit_baselines\n"
        "started = time.perf_counter()\n"
        "fit_baselines(np.ones((2, 70)), 56, baseline_days=28, season_weeks=8, min_days=21,"
        " scale_floor=0.02)\n"
        "print(time.perf_counter() - started)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": _empty_dir()}
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return float(output.stdout.strip())


def _empty_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="costwarden-numba-")


def pass_section(
    scopes: int, timings: dict[str, float], compile_seconds: float, detection: Detection
) -> list[str]:
    return [
        f"### Pass over {scopes:,} scopes",
        "",
        f"{scopes:,} scopes, {DAYS} days of history, {CHECKED} days checked "
        f"({detection.scope_days:,} scope-days), {CHILDREN} children per scope, default "
        "`AnomalySettings()`. Best of the timed passes, after a warm-up call.",
        "",
        "| step | wall time |",
        "|---|---|",
        f"| baseline and run detection (`detect_runs`) | {timings['detection']:.2f} s |",
        f"| contributor ranking of {len(detection.runs)} anomalies (`run_means`) | "
        f"{timings['ranking']:.2f} s |",
        f"| total | {timings['total']:.2f} s |",
        "",
        f"A fresh process with an empty numba cache spends {compile_seconds:.1f} s compiling the "
        "baseline kernel once; later processes load it from the cache.",
    ]


def quality_section(panel: Panel, detection: Detection, tops: dict[int, int]) -> list[str]:
    found = right_child = 0
    false_alerts = 0
    for run in detection.runs:
        planted = panel.planted.get(run.row)
        if planted is None:
            false_alerts += 1
            continue
        if abs(run.start - planted.start) <= 1:
            found += 1
            right_child += tops.get(run.row) == planted.child
    total = len(panel.planted)
    clean_days = detection.scope_days * (1 - total / len(panel.values))
    return [
        "### Detection quality on the planted anomalies",
        "",
        "| planted | found (first day +-1) | right top child | alerts on other scopes | per 1,000 "
        "scope-days |",
        "|---|---|---|---|---|",
        f"| {total} | {found} | {right_child} | {false_alerts} | "
        f"{1000 * false_alerts / clean_days:.3f} |",
    ]


def alternative_section(
    panel: Panel, thresholds: Thresholds, settings: AnomalySettings
) -> list[str]:
    """Compare the robust baseline with forecast_batch as the one-day-ahead expectation.

    For each checked day, the forecaster fits on the days before it and forecasts that day. A
    day above the upper bound of the 95% interval opens an anomaly when it also passes the money
    and percentage minimums of the robust rule.
    """
    scopes = len(panel.values)
    ids = [f"scope-{row}" for row in range(scopes)]
    first_day = LAST_DAY - timedelta(days=DAYS - 1)
    opens = np.zeros((scopes, CHECKED), dtype=bool)

    started = time.perf_counter()
    for offset in range(CHECKED):
        column = FIRST + offset
        history_end = first_day + timedelta(days=column - 1)
        as_of = datetime.combine(history_end, datetime.min.time(), UTC) + timedelta(days=1)
        forecast = forecast_batch(
            ids, panel.values[:, :column], history_end, 1, as_of, ForecastSettings()
        )
        expected = forecast.mean[:, 0]
        upper = forecast.bounds(95)[1][:, 0]
        actual = panel.values[:, column]
        excess = actual - expected
        opens[:, offset] = (
            (actual > upper)
            & (excess >= thresholds.min_impact)
            & (excess >= thresholds.min_percent * expected)
        )
    forecast_seconds = time.perf_counter() - started

    started = time.perf_counter()
    robust = detect(panel.values, thresholds, settings)
    robust_seconds = time.perf_counter() - started
    robust_opens = np.zeros((scopes, CHECKED), dtype=bool)
    for run in robust.runs:
        robust_opens[run.row, run.start - FIRST] = True
    return [
        "### Robust baseline against the batched forecaster as the expectation",
        "",
        f"Both judge each of the {CHECKED} checked days from the days before it. The "
        f"forecaster runs once per checked day ({CHECKED} fits of {scopes:,} series, default "
        "`ForecastSettings()` and `BatchOptions()`) and opens an anomaly on a day above the "
        "upper bound of its 95% interval, with the same money and percentage minimums.",
        "",
        "| expectation | wall time | planted found (first day +-1) | anomalies opened on other "
        "scopes |",
        "|---|---|---|---|",
        _row("robust baseline (`detect_runs`)", robust_seconds, robust_opens, panel),
        _row("`forecast_batch`, 95% upper bound", forecast_seconds, opens, panel),
    ]


def _row(name: str, seconds: float, opens: np.ndarray, panel: Panel) -> str:
    found = 0
    for row, item in panel.planted.items():
        days = np.flatnonzero(opens[row]) + FIRST
        found += bool(np.any(np.abs(days - item.start) <= 1))
    others = sum(int(opens[row].sum()) for row in range(len(opens)) if row not in panel.planted)
    return f"| {name} | {seconds:.2f} s | {found} of {len(panel.planted)} | {others} |"


def machine_lines() -> list[str]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in lscpu.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    free = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()
    memory = free[1].split()[1] if len(free) > 1 else "?"
    versions = ", ".join(f"{name} {version(name)}" for name in ("numpy", "numba"))
    return [
        f"- Machine: {os.cpu_count()} CPUs (`nproc`), {model}, {memory} RAM (`free -h`)",
        f"- Python {platform.python_version()}; {versions}",
        f"- Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    ]


if __name__ == "__main__":
    main()

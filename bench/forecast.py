"""Benchmark the batched forecaster against Prophet and statsforecast AutoETS, and at scale.

Run from the repository root: ``.venv/bin/python bench/forecast.py`` (``make bench`` installs
the ``bench`` extra first). It prints a Markdown report; ``--output FILE`` also writes it.

Sections, all offline and on the same series for every method:

* simulator fleet: rolling-origin backtest of cluster daily costs at horizon 30;
* Peyton Manning: rolling-origin backtest of the daily log page views at horizon 30;
* scale: 10,000 simulated series with 180 days of history, with intervals and the exceedance
  probability of a budget per series, in a child process that reports its peak memory;
* start-up: numba compile time with an empty cache, cache load time, and a batch of one.

Accuracy is the mean absolute scaled error (MASE, scaled by the in-sample mean absolute error
of the weekly seasonal naive forecast on the same history) and the share of held-out days
inside the 80% and 95% intervals. Speed is wall time per series, fit and predict together.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from costwarden.config import ForecastSettings
from costwarden.domain.budget import PeriodWindow
from costwarden.forecast import BatchOptions, forecast_batch
from costwarden.forecast.adjustment import IntervalAdjustment, ResidualForecast, fit_adjustment
from costwarden.simulator import build_fleet

ROOT = Path(__file__).resolve().parent.parent
PEYTON = Path(os.environ.get("COSTWARDEN_SHARED", ROOT.parent / "shared")) / (
    "data/forecast/example_wp_log_peyton_manning.csv"
)
HORIZON = 30
SCALE_HORIZON = 45
"""Days forecast in the scale run: the rest of the month and beyond, as for a monthly budget
checked mid-month whose next period is forecast too."""
HISTORY_DAYS = 180
SEASON = 7
LEVELS = (80, 95)

logger = logging.getLogger("bench.forecast")


@dataclass
class Score:
    """Accuracy and time of one method on one dataset."""

    mase: list[float] = field(default_factory=list)
    inside80: list[float] = field(default_factory=list)
    inside95: list[float] = field(default_factory=list)
    seconds: float = 0.0
    series: int = 0
    skipped: int = 0

    def add(self, actual: np.ndarray, mean: np.ndarray, bounds: dict[int, tuple], scale: float):
        self.mase.append(float(np.mean(np.abs(actual - mean)) / scale))
        low, high = bounds[80]
        self.inside80.append(float(np.mean((actual >= low) & (actual <= high))))
        low, high = bounds[95]
        self.inside95.append(float(np.mean((actual >= low) & (actual <= high))))

    def row(self, name: str) -> str:
        per_series = 1000 * self.seconds / max(self.series, 1)
        return (
            f"| {name} | {np.mean(self.mase):.3f} | {np.median(self.mase):.3f} | "
            f"{100 * np.mean(self.inside80):.1f}% | {100 * np.mean(self.inside95):.1f}% | "
            f"{per_series:.2f} | {self.series} |"
        )


@dataclass
class Task:
    """The series of one rolling origin: histories ending on the same day, and their futures."""

    ids: list[str]
    history: np.ndarray
    future: np.ndarray
    history_end: date
    scales: np.ndarray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--seeds", type=int, default=4, help="simulator fleets (seeds 1..N)")
    parser.add_argument("--clusters", type=int, default=60, help="clusters per fleet")
    parser.add_argument("--origins", type=int, default=4, help="rolling origins per dataset")
    parser.add_argument("--scale-series", type=int, default=10_000)
    parser.add_argument("--skip-prophet", action="store_true")
    parser.add_argument("--scale-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.scale_child:
        print(json.dumps(scale_run(args.scale_series)))
        return

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("cmdstanpy", "prophet"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    lines = ["# Forecast benchmark", "", *machine_lines(), ""]
    tasks = simulator_tasks(args.seeds, args.clusters, args.origins)
    held_out = simulator_tasks(args.seeds, args.clusters, args.origins, first_seed=args.seeds + 1)
    lines += accuracy_section(
        "Simulator fleet",
        tasks,
        args.skip_prophet,
        prophet_yearly=False,
        adjustment=fit_task_adjustment(held_out),
    )
    peyton_origins = args.origins * 3
    lines += accuracy_section(
        "Peyton Manning",
        peyton_tasks(peyton_origins),
        args.skip_prophet,
        prophet_yearly=True,
        adjustment=fit_task_adjustment(peyton_tasks(peyton_origins, skip=peyton_origins)),
    )
    lines += scale_section(args.scale_series)
    lines += startup_section()

    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        args.output.write_text(report)


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
    packages = ["numpy", "numba", "statsforecast", "prophet", "pandas"]
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    return [
        f"- Machine: {os.cpu_count()} CPUs (`nproc`), {model}, {memory} RAM (`free -h`)",
        f"- Python {platform.python_version()}; {versions}",
        f"- Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    ]


def _version(name: str) -> str:
    try:
        return version(name)
    except Exception:
        return "not installed"


def simulator_tasks(seeds: int, clusters: int, origins: int, first_seed: int = 1) -> list[Task]:
    """Return rolling origins 14 days apart over cluster daily costs of several fleets."""
    as_of = datetime(2025, 11, 15, 12, tzinfo=UTC)
    history_days = HISTORY_DAYS + HORIZON + 14 * origins + 30
    fleets = [
        build_fleet(seed, as_of, history_days=history_days, cluster_count=clusters)
        for seed in range(first_seed, first_seed + seeds)
    ]
    tasks = []
    last_complete = fleets[0].days - 1
    for number in range(origins):
        origin = last_complete - HORIZON - 14 * number
        ids, histories, futures = [], [], []
        for fleet in fleets:
            for cluster in fleet.clusters:
                if cluster.first_day > origin - 60:
                    continue
                values = (cluster.compute + cluster.storage).astype(float)
                ids.append(f"{fleet.seed}/{cluster.name}")
                histories.append(values[origin - HISTORY_DAYS : origin])
                futures.append(values[origin : origin + HORIZON])
        history_end = (fleets[0].start + timedelta(days=origin - 1)).date()
        tasks.append(_task(ids, np.array(histories), np.array(futures), history_end))
    return tasks


def peyton_tasks(origins: int, skip: int = 0) -> list[Task]:
    """Return rolling origins 30 days apart on the Peyton Manning series, gaps interpolated.

    The latest origin leaves ``HORIZON`` days after it, less ``30 * skip`` days.
    """
    frame = pd.read_csv(PEYTON, parse_dates=["ds"]).set_index("ds")["y"]
    daily = frame.asfreq("D").interpolate()
    values = daily.to_numpy()
    tasks = []
    for number in range(skip, skip + origins):
        origin = len(values) - HORIZON - 30 * number
        history_end = daily.index[origin - 1].date()
        tasks.append(
            _task(
                ["peyton"],
                values[None, :origin],
                values[None, origin : origin + HORIZON],
                history_end,
            )
        )
    return tasks


def _task(ids: list[str], history: np.ndarray, future: np.ndarray, history_end: date) -> Task:
    """Build a task; series whose seasonal naive error is 0 (constant cost) have no MASE."""
    scales = np.array([_naive_scale(row[-HISTORY_DAYS:]) for row in history])
    keep = scales > 0
    return Task(
        [i for i, k in zip(ids, keep, strict=True) if k],
        history[keep],
        future[keep],
        history_end,
        scales[keep],
    )


def accuracy_section(
    title: str,
    tasks: list[Task],
    skip_prophet: bool,
    *,
    prophet_yearly: bool,
    adjustment: IntervalAdjustment | None = None,
) -> list[str]:
    methods: dict[str, Callable[[Task, Score], None]] = {
        "costwarden (batched, calibrated)": lambda task, score: run_costwarden(task, score),
        "costwarden, calibration off": lambda task, score: run_costwarden(
            task, score, BatchOptions(calibrate=False)
        ),
    }
    if adjustment is not None:
        methods["costwarden, backtest-adjusted"] = lambda task, score: run_costwarden(
            task, score, BatchOptions(interval_adjustment=adjustment)
        )
    methods["statsforecast AutoETS"] = run_autoets
    if not skip_prophet:
        methods["Prophet"] = lambda task, score: run_prophet(task, score, prophet_yearly)

    # One untimed run per method first: loading compiled code (numba's cache, Prophet's Stan
    # model) happens once per process and is reported in the start-up section instead.
    warm_up = _first_series(tasks[0])
    for method in methods.values():
        method(warm_up, Score())

    scores = {name: Score() for name in methods}
    for task in tasks:
        for name, method in methods.items():
            method(task, scores[name])

    series = sum(len(task.ids) for task in tasks)
    lines = [
        f"## {title}",
        "",
        f"{len(tasks)} rolling origins, {series} forecasts of {HORIZON} days.",
        "",
        "| method | mean MASE | median MASE | 80% coverage | 95% coverage | ms per series "
        "| forecasts |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [score.row(name) for name, score in scores.items()]
    lines += _speedup_lines(scores)
    return lines + [""]


def _first_series(task: Task) -> Task:
    return Task(task.ids[:1], task.history[:1], task.future[:1], task.history_end, task.scales[:1])


def _speedup_lines(scores: dict[str, Score]) -> list[str]:
    ours = scores["costwarden (batched, calibrated)"]
    ours_rate = ours.seconds / max(ours.series, 1)
    lines = [""]
    for name in ("statsforecast AutoETS", "Prophet"):
        if name in scores and ours_rate > 0:
            other = scores[name].seconds / max(scores[name].series, 1)
            lines.append(f"Throughput: costwarden is {other / ours_rate:.0f} times {name}.")
    return lines


def fit_task_adjustment(tasks: list[Task]) -> IntervalAdjustment:
    """Fit the backtest interval adjustment on costwarden's forecasts of ``tasks``."""
    residuals = []
    for task in tasks:
        as_of = datetime.combine(task.history_end + timedelta(days=1), datetime.min.time(), UTC)
        batch = forecast_batch(
            task.ids, task.history, task.history_end, HORIZON, as_of, ForecastSettings()
        )
        bounds = {level: batch.bounds(level) for level in LEVELS}
        for row in range(len(task.ids)):
            residuals.append(
                ResidualForecast(
                    origin=task.history_end,
                    actual=task.future[row],
                    mean=batch.mean[row],
                    lower={level: low[row] for level, (low, _) in bounds.items()},
                    upper={level: high[row] for level, (_, high) in bounds.items()},
                )
            )
    return fit_adjustment(residuals)


def run_costwarden(task: Task, score: Score, options: BatchOptions | None = None) -> None:
    as_of = datetime.combine(task.history_end + timedelta(days=1), datetime.min.time(), UTC)
    settings = ForecastSettings(sample_paths=500)
    started = time.perf_counter()
    batch = forecast_batch(
        task.ids, task.history, task.history_end, HORIZON, as_of, settings, options=options
    )
    mean = batch.mean
    bounds = {level: batch.bounds(level) for level in LEVELS}
    score.seconds += time.perf_counter() - started
    score.series += len(task.ids)
    for row in range(len(task.ids)):
        score.add(
            task.future[row],
            mean[row],
            {level: (low[row], high[row]) for level, (low, high) in bounds.items()},
            task.scales[row],
        )


def run_autoets(task: Task, score: Score) -> None:
    from statsforecast.models import AutoETS

    for row in range(len(task.ids)):
        y = _trimmed(task.history[row])
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AutoETS(season_length=SEASON).fit(y)
            output = model.predict(HORIZON, level=list(LEVELS))
        score.seconds += time.perf_counter() - started
        score.series += 1
        bounds = {
            level: (
                np.clip(output[f"lo-{level}"], 0, None)
                if task.ids[row] != "peyton"
                else output[f"lo-{level}"],
                output[f"hi-{level}"],
            )
            for level in LEVELS
        }
        score.add(task.future[row], output["mean"], bounds, task.scales[row])


def run_prophet(task: Task, score: Score, yearly: bool) -> None:
    from prophet import Prophet

    for row in range(len(task.ids)):
        y = _trimmed(task.history[row]) if not yearly else task.history[row]
        start = task.history_end - timedelta(days=len(y) - 1)
        frame = pd.DataFrame({"ds": pd.date_range(start, periods=len(y)), "y": y})
        started = time.perf_counter()
        model = Prophet(
            yearly_seasonality=yearly,
            weekly_seasonality=True,
            daily_seasonality=False,
            uncertainty_samples=500,
        )
        model.fit(frame)
        future = model.make_future_dataframe(HORIZON, include_history=False)
        mean = model.predict(future)["yhat"].to_numpy()
        samples = model.predictive_samples(future)["yhat"]
        score.seconds += time.perf_counter() - started
        score.series += 1
        bounds = {
            level: tuple(np.quantile(samples, [0.5 - level / 200, 0.5 + level / 200], axis=1))
            for level in LEVELS
        }
        score.add(task.future[row], mean, bounds, task.scales[row])


def _naive_scale(row: np.ndarray) -> float:
    """Return the in-sample MAE of the weekly seasonal naive forecast, the MASE denominator."""
    y = _trimmed(row)
    if len(y) <= SEASON:
        return 0.0
    return float(np.mean(np.abs(y[SEASON:] - y[:-SEASON])))


def _trimmed(y: np.ndarray) -> np.ndarray:
    """Drop the leading zeros of a cluster that did not exist yet, as costwarden does."""
    nonzero = np.flatnonzero(y)
    return y[nonzero[0] :] if nonzero.size else y


def scale_section(series: int) -> list[str]:
    command = [sys.executable, __file__, "--scale-child", "--scale-series", str(series)]
    result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    return [
        "## Scale",
        "",
        f"{result['series']} simulated cluster series, {HISTORY_DAYS} days of history, horizon "
        f"{result['horizon']} days, {result['paths']} sample paths per series, one monthly "
        "budget per series, in a child process.",
        "",
        "| step | wall time |",
        "|---|---|",
        f"| forecast_batch (selection, refit, calibration) | {result['forecast_s']:.2f} s |",
        f"| exceedance of every budget (paths streamed) | {result['exceedance_s']:.2f} s |",
        f"| total | {result['forecast_s'] + result['exceedance_s']:.2f} s |",
        "",
        f"Peak resident memory of the child: {result['peak_rss_mib']:.0f} MiB, of which "
        f"{result['baseline_rss_mib']:.0f} MiB before the run (interpreter, libraries, the "
        f"input array). Models chosen: {result['models']}. Budgets at risk (P >= 0.5): "
        f"{result['at_risk']}.",
        "",
    ]


def scale_run(series: int) -> dict[str, object]:
    """Forecast ``series`` simulated clusters and check one budget each; report time and memory."""
    as_of = datetime(2025, 11, 15, 6, tzinfo=UTC)
    fleet = build_fleet(7, as_of, history_days=HISTORY_DAYS, cluster_count=series)
    values = np.array([cluster.compute + cluster.storage for cluster in fleet.clusters])[:, :-1]
    ids = [cluster.uid for cluster in fleet.clusters]
    history_end = as_of.date() - timedelta(days=1)
    window = PeriodWindow(date(2025, 11, 1), date(2025, 12, 1))
    settings = ForecastSettings()
    horizon = SCALE_HORIZON

    in_window = values[:, -(history_end - window.start).days - 1 :]
    spent = [Decimal(str(round(float(total), 2))) for total in in_window.sum(axis=1)]
    budgets = [
        Decimal(str(round(float(amount), 2)))
        for amount in 30
        * values[:, -7:].mean(axis=1)
        * np.random.default_rng(1).uniform(0.9, 1.2, len(ids))
    ]
    forecast_batch(ids[:2], values[:2], history_end, horizon, as_of, settings)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    started = time.perf_counter()
    batch = forecast_batch(ids, values, history_end, horizon, as_of, settings)
    forecast_seconds = time.perf_counter() - started
    started = time.perf_counter()
    results = batch.exceedance(window, spent, budgets)
    exceedance_seconds = time.perf_counter() - started

    models: dict[str, int] = {}
    for model in batch.models:
        models[model] = models.get(model, 0) + 1
    return {
        "series": len(ids),
        "horizon": horizon,
        "paths": settings.sample_paths,
        "forecast_s": forecast_seconds,
        "exceedance_s": exceedance_seconds,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "models": dict(sorted(models.items())),
        "at_risk": sum(result.probability >= 0.5 for result in results),
    }


STARTUP_CODE = """
import json, time
started = time.perf_counter()
from datetime import UTC, date, datetime
import numpy as np
from costwarden.config import ForecastSettings
from costwarden.forecast import forecast_series
imported = time.perf_counter()
values = 100 + np.random.default_rng(0).normal(0, 5, 180)
as_of = datetime(2025, 4, 1, 6, tzinfo=UTC)
settings = ForecastSettings()
forecast_series("one", values, date(2025, 3, 31), 30, as_of, settings)
first = time.perf_counter()
forecast_series("two", values, date(2025, 3, 31), 30, as_of, settings)
second = time.perf_counter()
print(json.dumps({"import_s": imported - started, "first_s": first - imported,
                  "second_s": second - first}))
"""


def startup_section() -> list[str]:
    """Time a fresh process forecasting one series, with an empty and then a written cache."""
    runs = {}
    with tempfile.TemporaryDirectory() as cache:
        environment = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for name in ("empty cache", "cache written"):
            output = subprocess.run(
                [sys.executable, "-c", STARTUP_CODE],
                capture_output=True,
                text=True,
                check=True,
                env=environment,
            ).stdout
            runs[name] = json.loads(output)
    lines = [
        "## Start-up",
        "",
        "A fresh process forecasting one series (`forecast_series`, 180 days, horizon 30). The "
        "first run has an empty numba cache (`NUMBA_CACHE_DIR`), so it compiles the kernels; "
        "the second loads what the first wrote.",
        "",
        "| numba cache | import | first forecast | second forecast |",
        "|---|---|---|---|",
    ]
    for name, run in runs.items():
        lines.append(
            f"| {name} | {run['import_s']:.2f} s | {run['first_s']:.2f} s | "
            f"{1000 * run['second_s']:.1f} ms |"
        )
    return lines + [""]


if __name__ == "__main__":
    main()

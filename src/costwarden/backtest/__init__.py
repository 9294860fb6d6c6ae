"""Rolling-origin backtests of the forecaster on stored cost history.

``run_backtest(session, forecast_settings, BacktestOptions(...))`` forecasts every cluster (or
every budget scope) from several past origins, using only the data up to each origin. It returns
a ``BacktestResult`` with MASE, sMAPE and 80% and 95% interval coverage. For budget exceedance
probabilities, the result has the Brier score and a reliability table, next to the Brier score
of a straight-line baseline.
``result_json`` turns the result into JSON, and ``costwarden.backtest.plots.write_plots`` into
PNG charts (imported on demand, because matplotlib is slow to import).
"""

from costwarden.backtest.metrics import (
    ReliabilityBin,
    brier_score,
    mase,
    reliability_table,
    seasonal_naive_scale,
    smape,
    straight_line_total,
)
from costwarden.backtest.report import result_json
from costwarden.backtest.results import (
    Accuracy,
    BacktestResult,
    ExceedanceEvent,
    OriginForecast,
    ProbabilityScore,
    ScopeReport,
    Skip,
)
from costwarden.backtest.runner import BacktestOptions, rolling_origins, run_backtest
from costwarden.backtest.series import ScopeSeries

__all__ = [
    "Accuracy",
    "BacktestOptions",
    "BacktestResult",
    "ExceedanceEvent",
    "OriginForecast",
    "ProbabilityScore",
    "ReliabilityBin",
    "ScopeReport",
    "ScopeSeries",
    "Skip",
    "brier_score",
    "mase",
    "reliability_table",
    "result_json",
    "rolling_origins",
    "run_backtest",
    "seasonal_naive_scale",
    "smape",
    "straight_line_total",
]

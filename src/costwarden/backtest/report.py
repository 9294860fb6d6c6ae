"""The JSON form of a backtest result, as printed by ``costwarden backtest --json``."""

from __future__ import annotations

from typing import Any

from costwarden.backtest.results import Accuracy, BacktestResult, ProbabilityScore, ScopeReport

DIGITS = 4


def result_json(result: BacktestResult) -> dict[str, Any]:
    """Return the overall metrics at the top level, then breakdowns, scopes and skips.

    ``smape`` is in percent (0 to 200) and coverages are fractions (0 to 1). A metric that could
    not be computed is null. The ``_raw`` coverages appear only when the forecaster produced
    uncalibrated intervals, and the ``_adjusted`` ones when the backtest had two origins or more
    to fit the interval adjustment on.
    """
    return {
        "source": result.source,
        "scope_kind": result.scope_kind,
        "history": {
            "start": result.history_start.isoformat(),
            "end": result.history_end.isoformat(),
        },
        "horizons": list(result.horizons),
        "origins": [origin.isoformat() for origin in result.origins],
        "exceedance_origins": [origin.isoformat() for origin in result.event_origins],
        "budget_levels": list(result.levels),
        "counts": _counts(result),
        **_accuracy_json(result.overall),
        **_score_json(result.exceedance),
        "by_horizon": [
            {"horizon": horizon, **_accuracy_json(accuracy)}
            for horizon, accuracy in result.by_horizon.items()
        ],
        "by_level": [
            {"level": level, **_score_json(score)} for level, score in result.by_level.items()
        ],
        "reliability": [
            {
                "lower": round(row.lower, DIGITS),
                "upper": round(row.upper, DIGITS),
                "count": row.count,
                "mean_predicted": _rounded(row.mean_predicted),
                "observed_frequency": _rounded(row.observed_frequency),
            }
            for row in result.reliability
        ],
        "calibration": {
            "forecasts": result.forecasts_made,
            "calibrated": result.calibrated_forecasts,
        },
        "adjustment": None if result.adjustment is None else result.adjustment.audit(),
        "scopes": [_scope_json(scope) for scope in result.scopes],
        "skipped": [
            {
                "scope": skip.scope,
                "origin": None if skip.origin is None else skip.origin.isoformat(),
                "purpose": skip.purpose,
                "reason": skip.reason,
            }
            for skip in result.skipped
        ],
    }


def _counts(result: BacktestResult) -> dict[str, int]:
    return {
        "scopes": len(result.scopes),
        "scopes_without_data": len(result.without_data),
        "origins": len(result.origins),
        "forecasts": result.overall.forecasts,
        "days": result.overall.days,
        "mase_defined": result.overall.mase_defined,
        "events": result.exceedance.events,
        "skipped": len(result.skipped),
    }


def _accuracy_json(accuracy: Accuracy) -> dict[str, Any]:
    data = {
        "forecasts": accuracy.forecasts,
        "mase": _rounded(accuracy.mase),
        "smape": _rounded(accuracy.smape),
        "coverage_80": _rounded(accuracy.coverage_80),
        "coverage_95": _rounded(accuracy.coverage_95),
    }
    if accuracy.coverage_80_raw is not None:
        data["coverage_80_raw"] = _rounded(accuracy.coverage_80_raw)
        data["coverage_95_raw"] = _rounded(accuracy.coverage_95_raw)
    if accuracy.coverage_80_adjusted is not None:
        data["coverage_80_adjusted"] = _rounded(accuracy.coverage_80_adjusted)
        data["coverage_95_adjusted"] = _rounded(accuracy.coverage_95_adjusted)
    return data


def _score_json(score: ProbabilityScore) -> dict[str, Any]:
    return {
        "events": score.events,
        "brier": _rounded(score.brier),
        "baseline_brier": _rounded(score.baseline_brier),
    }


def _scope_json(scope: ScopeReport) -> dict[str, Any]:
    return {
        "name": scope.name,
        "spend": round(scope.spend, 2),
        "currency": scope.currency,
        **_accuracy_json(scope.accuracy),
        **_score_json(scope.exceedance),
        "skipped": scope.skipped,
        "by_horizon": [
            {"horizon": horizon, **_accuracy_json(accuracy)}
            for horizon, accuracy in scope.by_horizon.items()
        ],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS)

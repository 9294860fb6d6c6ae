"""Sample alert payloads, notices and notify settings for the notification core tests.

The payloads follow the JSON schemas in docs/schemas; test_build checks that they validate.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from costwarden.config import NotifySettings
from costwarden.notify.notice import Notice

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
GENERATED_AT = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
WEBHOOK = {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "whsec_" + "A" * 44}


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


BUDGET_PAYLOAD: dict[str, Any] = {
    "schema_version": "1.4",
    "alert_id": "a" * 32,
    "kind": "budget_forecast",
    "severity": "critical",
    "title": "ml-training-monthly: forecast 17,250.00 USD for the period",
    "currency": "USD",
    "budget": {
        "name": "ml-training-monthly",
        "amount": 15000.0,
        "period_kind": "monthly",
        "timezone": "UTC",
        "owner": "ml-platform@example.com",
        "description": "GPU training",
        "labels": {"team": "ml", "env": "prod", "cost-center": "cc-42"},
    },
    "threshold": {
        "type": "forecast",
        "percent": 100.0,
        "amount": None,
        "probability": 0.8,
        "limit": 15000.0,
    },
    "scope": {
        "description": "cluster ml-training-eks",
        "cluster": "ml-training-eks",
        "project": None,
        "namespace": None,
        "labels": None,
        "provider": None,
        "account": None,
        "service": None,
        "source": "palette",
        "grain": "cluster",
    },
    "period": {"start": "2026-11-01", "end": "2026-11-30", "days_total": 30, "days_elapsed": 15},
    "spend_to_date": 8123.4,
    "previous_period_total": 12000.0,
    "forecast": {
        "total": 17250.0,
        "mean_total": 17300.0,
        "interval_80": {"lower": 16100.5, "upper": 18400.0},
        "interval_95": {"lower": 15500.0, "upper": 19000.0},
        "scheduled": None,
    },
    "exceedance_probability": 0.87,
    "already_exceeded": False,
    "breach_date": "2026-11-26",
    "breach_date_p10": "2026-11-24",
    "breach_date_p90": "2026-11-29",
    "overspend": {"expected": 2250.0, "at_median": 2200.0},
    "contributors": [
        {
            "name": f"pool-{index}",
            "kind": "cluster",
            "previous_total": 100.0,
            "forecast_total": 100.0 + index,
            "growth": 1000.0 - index * 100,
            "share_of_growth": round(0.3 - index * 0.04, 4),
        }
        for index in range(3)
    ],
    "links": {
        "palette": "https://console.spectrocloud.com/clusters/u1",
        "clusters": [
            {"name": "ml-training-eks", "url": "https://console.spectrocloud.com/clusters/u1"}
        ],
    },
    "data_window": {
        "start": "2026-05-01",
        "end": "2026-11-14",
        "as_of": "2026-11-15T10:00:00Z",
        "missing_days": 0,
    },
    "model": {
        "name": "AutoETS",
        "version": "1",
        "fallback_reason": None,
        "interval_adjustment": None,
    },
    "recommended_actions": [
        {
            "id": "00000000000000a1",
            "kind": "rightsize-pool",
            "title": "Shrink the gpu pool from 8 to 6 nodes",
            "target": {
                "cluster": "ml-training-eks",
                "namespace": None,
                "kind": "MachinePool",
                "name": "gpu",
                "pool": "gpu",
            },
            "before": {"size": 8},
            "after": {"size": 6},
            "savings": {
                "per_day": 41.1,
                "per_month": 1234.5,
                "currency": "USD",
                "method": "list price",
                "prices": [],
            },
            "confidence": "high",
            "risk": "low",
            "effort": "low",
            "reversible": True,
            "api_call": {
                "method": "PUT",
                "path": "/v1/clusters/u1/pools/gpu",
                "body": {},
                "note": "",
                "complete": True,
            },
            "manual_change": None,
            "ui_link": None,
        }
    ],
    "generated_at": "2026-11-15T10:00:00Z",
}

QUOTA_PAYLOAD: dict[str, Any] = {
    "schema_version": "1.0",
    "alert_id": "c" * 32,
    "kind": "quota",
    "severity": "warning",
    "title": "namespace payments-prod/ledger: cpu 7.5 of 8.0 cores (namespace quota)",
    "scope": {
        "kind": "namespace",
        "description": "namespace payments-prod/ledger",
        "cluster": {"uid": "c-pay", "name": "payments-prod"},
        "project_uid": "p1",
        "namespace": "ledger",
        "pool": None,
        "workspace": None,
    },
    "resource": "cpu",
    "unit": "cores",
    "limit": {"value": 8.0, "kind": "namespace_quota"},
    "current_usage": {
        "value": 7.5,
        "day": "2026-11-14",
        "statistic": "daily_peak",
        "utilisation": 0.9375,
    },
    "already_at_limit": False,
    "breach_date": "2026-11-20",
    "breach_date_p10": "2026-11-18",
    "breach_date_p90": "2026-11-25",
    "probability": 0.72,
    "window": {"days": 14, "start": "2026-11-15", "end": "2026-11-28"},
    "pool": None,
    "links": {"palette": "https://console.spectrocloud.com/clusters/c-pay"},
    "data_window": {"start": "2026-10-01", "end": "2026-11-14", "as_of": "2026-11-15T10:00:00Z"},
    "model": {
        "name": "quantile-trend",
        "version": "1",
        "fallback_reason": None,
        "method": "linear",
    },
    "generated_at": "2026-11-15T10:00:00Z",
}

ANOMALY_PAYLOAD: dict[str, Any] = {
    "schema_version": "1.0",
    "alert_id": "d" * 32,
    "kind": "anomaly",
    "anomaly_kind": "spike",
    "metric": "cost",
    "severity": "critical",
    "title": "cluster payments-prod: 900.00 USD/day against 300.00 expected",
    "currency": "USD",
    "status": "ongoing",
    "suppressed_by": None,
    "scope": {
        "kind": "cluster",
        "key": "c-pay",
        "description": "cluster payments-prod",
        "cluster": {"uid": "c-pay", "name": "payments-prod"},
        "namespace": None,
        "project_uid": "p1",
        "clusters": 1,
    },
    "first_day": "2026-11-13",
    "last_day": "2026-11-14",
    "days": 2,
    "first_seen": "2026-11-14T10:00:00Z",
    "values": {
        "unit": "USD",
        "expected_per_day": 300.0,
        "actual_per_day": 900.0,
        "lower_per_day": 250.0,
        "upper_per_day": 350.0,
    },
    "impact": {"per_day": 600.0, "total": 1200.0, "percent": 2.0},
    "score": 9.1,
    "triage": {
        "cause": "pool_scale_up",
        "likely_cause": "node pool scaled up",
        "evidence": [],
        "next_step": "check the autoscaler",
        "confidence": "medium",
        "link": None,
    },
    "contributors": [
        {
            "dimension": "namespace",
            "value": f"ns-{index}",
            "expected": 10.0,
            "actual": 20.0,
            "delta": 10.0 + index,
            "share": 0.1,
        }
        for index in range(6)
    ],
    "drivers": [],
    "events": [],
    "related": [],
    "daily": [],
    "links": {"palette": None},
    "data_window": {"start": "2026-08-01", "end": "2026-11-14", "as_of": "2026-11-15T10:00:00Z"},
    "model": {"name": "robust-baseline", "version": "1", "params": {}},
    "generated_at": "2026-11-15T10:00:00Z",
}

RECOMMENDATION_ITEM: dict[str, Any] = {
    "id": "0123456789abcdef",
    "kind": "rightsize-requests",
    "title": "Lower the CPU request of checkout/api from 2 to 0.5 cores",
    "target": {
        "cluster": "payments-prod",
        "namespace": "checkout",
        "kind": "Deployment",
        "name": "api",
        "pool": None,
    },
    "before": {"cpu": "2"},
    "after": {"cpu": "500m"},
    "savings": {
        "per_day": "10.2500",
        "per_month": "311.77",
        "currency": "USD",
        "method": "list price",
        "prices": [],
    },
    "confidence": "high",
    "risk": "low",
    "risk_note": "",
    "effort": "low",
    "reversible": True,
    "resources": [],
    "api_call": None,
    "manual_change": "kubectl set resources ...",
    "ui_link": "https://console.spectrocloud.com/clusters/c-pay",
    "evidence": {},
}


def budget_payload(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(BUDGET_PAYLOAD)
    payload.update(changes)
    return payload


def notify_settings(**changes: Any) -> NotifySettings:
    """Notify settings with two webhook channels, ``ops`` and ``finops``, routing everything."""
    values: dict[str, Any] = {
        "public_url": "https://costwarden.example.com/",
        "channels": {"ops": dict(WEBHOOK), "finops": dict(WEBHOOK)},
        "routes": [{"name": "all", "channels": ["ops"]}],
    }
    values.update(changes)
    return NotifySettings.model_validate(values)


def notice(**changes: Any) -> Notice:
    """A firing critical budget notice; ``changes`` replaces any field."""
    values: dict[str, Any] = {
        "alert_id": "b" * 32,
        "kind": "budget",
        "severity": "critical",
        "title": "prod-monthly: forecast over budget",
        "generated_at": GENERATED_AT,
        "budget": "prod-monthly",
        "period_start": date(2026, 11, 1),
        "period_end": date(2026, 11, 30),
        "currency": "USD",
        "labels": {"team": "payments", "env": "prod"},
        "probability": 0.5,
        "breach_date": date(2026, 11, 20),
        "overspend": 1000.0,
    }
    values.update(changes)
    return Notice(**values)

"""Prometheus metrics of the service, on the process's default registry.

The Palette client counts its calls here as well, so the counters also move under
``costwarden run``; only ``costwarden serve`` exposes them, at ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PASS_DURATION = Histogram(
    "costwarden_pass_duration_seconds",
    "Duration of finished passes of the main job.",
    ["trigger"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600),
)
PASSES = Counter(
    "costwarden_passes_total",
    "Passes of the main job by trigger and outcome (succeeded, failed, abandoned).",
    ["trigger", "status"],
)
PASS_RUNNING = Gauge("costwarden_pass_running", "1 while this process runs a pass, else 0.")
LAST_SUCCESS = Gauge(
    "costwarden_last_success_timestamp_seconds",
    "Unix time at which the last successful pass of this process finished.",
)

PALETTE_CALLS = Counter(
    "costwarden_palette_api_calls_total",
    "HTTP calls to the Palette API by path template and status code (0: no response).",
    ["endpoint", "status"],
)
PALETTE_RETRIES = Counter(
    "costwarden_palette_api_retries_total",
    "Palette API calls sent again after a 429, a 5xx or a transport error.",
    ["endpoint", "reason"],
)

BUDGET_SPEND = Gauge(
    "costwarden_budget_spend_to_date",
    "Spend of the budget's current period up to the last pass, in the budget's currency.",
    ["budget", "currency"],
)
BUDGET_LIMIT = Gauge(
    "costwarden_budget_limit", "Amount of the budget's current period.", ["budget", "currency"]
)
BUDGET_FORECAST = Gauge(
    "costwarden_budget_forecast_total",
    "Median forecast of the period's total spend.",
    ["budget", "currency"],
)
BUDGET_EXCEEDANCE = Gauge(
    "costwarden_budget_exceedance_probability",
    "Probability that the period's total spend exceeds the budget amount.",
    ["budget"],
)
BUDGET_DAYS_TO_BREACH = Gauge(
    "costwarden_budget_days_to_breach",
    "Days from the last pass to the predicted breach date; absent when none is predicted.",
    ["budget"],
)

WEBHOOKS_RECEIVED = Counter(
    "costwarden_webhooks_received_total",
    "Inbound webhook deliveries by source and outcome (accepted, duplicate, rejected, invalid, "
    "failed).",
    ["source", "outcome"],
)
WEBHOOK_EVENTS_PROCESSED = Counter(
    "costwarden_webhook_events_processed_total",
    "Stored webhook events processed, by type and status (done, failed, ignored).",
    ["type", "status"],
)

HTTP_REQUESTS = Histogram(
    "costwarden_http_request_duration_seconds",
    "Duration of API requests by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

DELIVERIES = Counter(
    "costwarden_deliveries_total",
    "Outbox rows the delivery worker handled, by channel and outcome (sent, retried, dead, "
    "deferred).",
    ["channel", "outcome"],
)
OUTBOX_ROWS = Gauge(
    "costwarden_outbox_rows",
    "Outbox rows by status (pending, sending, sent, dead, cancelled) at the last worker scan.",
    ["status"],
)
DEAD_LETTERS = Gauge(
    "costwarden_outbox_dead_letters",
    "Outbox rows in the dead-letter state, by channel, at the last worker scan.",
    ["channel"],
)

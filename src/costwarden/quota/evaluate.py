"""The quota pass: project every stored usage series against its limit and decide alerts."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from costwarden.config import Settings
from costwarden.quota.alerts import decide_alerts
from costwarden.quota.model import QuotaProjection, QuotaReport
from costwarden.quota.projection import SCREEN_MODEL, project
from costwarden.quota.series import load_histories, load_targets

logger = logging.getLogger(__name__)


def evaluate_quotas(
    session: Session, settings: Settings, as_of: datetime, generated_at: datetime
) -> QuotaReport:
    """Project each stored limit's usage series as of ``as_of`` and return the report.

    Usage of the day of ``as_of`` counts only as a snapshot of the current state, because the
    day is not complete.
    """
    started = time.monotonic()
    quota = settings.quota
    today = as_of.date()
    first_day = today - timedelta(days=settings.forecast.history_days)
    targets = load_targets(session)
    histories = load_histories(session, first_day, today)

    projections: list[QuotaProjection] = []
    for target in targets:
        history = histories.get(target.key)
        projections.append(project(target, history, as_of, quota, settings.forecast))

    alerts = decide_alerts(projections, quota, generated_at, settings.palette.ui_url_template)
    report = QuotaReport(as_of, quota.window_days, tuple(projections), tuple(alerts))
    logger.info(
        "quota pass: %d limits, %d forecast, %d screened, %d without usage data, "
        "%d with short history, %d at the limit, %d alerts, %.1f s",
        len(targets),
        sum(projection.model not in (None, SCREEN_MODEL) for projection in projections),
        report.count("screened"),
        report.count("no_usage"),
        report.count("insufficient_history"),
        report.count("at_limit"),
        len(alerts),
        time.monotonic() - started,
    )
    return report

"""Feedback on anomalies: expected patterns that suppress later alerts, and alert precision.

A verdict ``expected`` on an anomaly suppresses later anomalies of the same scope and cause until
its ``until`` day (inclusive), or for good without one. A verdict ``problem`` confirms the alert.
Precision counts each anomaly once, by its latest verdict: problems / (problems + expected).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.domain.anomaly import Anomaly, Feedback, Precision, Verdict
from costwarden.errors import ConfigError
from costwarden.store.tables import AnomalyFeedbackRecord, AnomalyRecord


def mark_anomaly(
    session: Session,
    anomaly_id: str,
    verdict: Verdict,
    *,
    reason: str | None,
    until: date | None,
    now: datetime,
) -> Feedback:
    """Record a verdict on a stored anomaly, found by its id or a unique prefix of it."""
    record = find_anomaly(session, anomaly_id)
    if verdict == "expected" and not (reason and reason.strip()):
        raise ConfigError(
            "marking an anomaly as expected needs a reason; pass --reason TEXT, for example "
            '--reason "quarterly load test"'
        )
    if verdict == "problem" and until is not None:
        raise ConfigError("--until applies to --expected only; a problem verdict has no expiry")
    # Suppression runs on the data's clock (a pass's as_of), which may lie behind the wall clock,
    # so the expiry is checked against the anomaly's own last day.
    if until is not None and until < record.last_day:
        raise ConfigError(
            f"--until {until.isoformat()} is before the anomaly's last day {record.last_day}, so "
            f"it would suppress nothing; give {record.last_day} or later, or leave it out for no "
            "expiry"
        )

    feedback = Feedback(
        anomaly_id=record.anomaly_id,
        scope_key=record.scope_key,
        cause=record.cause,
        verdict=verdict,
        reason=reason.strip() if reason else None,
        until=until,
        created_at=now,
    )
    session.add(
        AnomalyFeedbackRecord(
            anomaly_id=feedback.anomaly_id,
            scope_key=feedback.scope_key,
            cause=feedback.cause,
            verdict=feedback.verdict,
            reason=feedback.reason,
            until=feedback.until,
            created_at=feedback.created_at,
        )
    )
    session.flush()
    return feedback


def find_anomaly(session: Session, anomaly_id: str) -> AnomalyRecord:
    """Return the stored anomaly with this id, or the only one whose id starts with it."""
    text = anomaly_id.strip().lower()
    if len(text) < 4:
        raise ConfigError(f"anomaly id {anomaly_id!r} is too short; give at least 4 characters")
    exact = session.get(AnomalyRecord, text)
    if exact is not None:
        return exact
    query = select(AnomalyRecord).where(AnomalyRecord.anomaly_id.startswith(text)).limit(3)
    found = list(session.scalars(query))
    if not found:
        raise ConfigError(
            f"no anomaly with id {anomaly_id!r}; `costwarden anomalies list` shows the ids"
        )
    if len(found) > 1:
        raise ConfigError(f"anomaly id {anomaly_id!r} is ambiguous; give more characters")
    return found[0]


def load_feedback(session: Session) -> list[Feedback]:
    """Return every verdict, oldest first."""
    query = select(AnomalyFeedbackRecord).order_by(
        AnomalyFeedbackRecord.created_at, AnomalyFeedbackRecord.id
    )
    return [
        Feedback(
            anomaly_id=row.anomaly_id,
            scope_key=row.scope_key,
            cause=row.cause,
            verdict=row.verdict,  # type: ignore[arg-type]
            reason=row.reason,
            until=row.until,
            created_at=row.created_at,
        )
        for row in session.scalars(query)
    ]


def suppression(anomaly: Anomaly, feedback: Sequence[Feedback], today: date) -> str | None:
    """Return why an anomaly is suppressed, or None when it should alert.

    The latest verdict on the anomaly itself decides when there is one. Otherwise an unexpired
    ``expected`` verdict on the same scope and cause suppresses it.
    """
    own = [item for item in feedback if item.anomaly_id == anomaly.anomaly_id]
    if own:
        latest = own[-1]
        return _reason(latest) if latest.verdict == "expected" and _active(latest, today) else None

    for item in reversed(feedback):
        if item.scope_key != anomaly.scope.key or item.cause != anomaly.cause:
            continue
        if item.verdict == "expected" and _active(item, today):
            return _reason(item)
    return None


def latest_verdicts(feedback: Sequence[Feedback]) -> dict[str, Feedback]:
    """Return the latest verdict of each anomaly id."""
    latest: dict[str, Feedback] = {}
    for item in feedback:
        latest[item.anomaly_id] = item
    return latest


def precision(feedback: Sequence[Feedback]) -> Precision:
    """Return the alert precision from the latest verdict of each anomaly."""
    verdicts = [item.verdict for item in latest_verdicts(feedback).values()]
    return Precision(problems=verdicts.count("problem"), expected=verdicts.count("expected"))


def _active(item: Feedback, today: date) -> bool:
    return item.until is None or item.until >= today


def _reason(item: Feedback) -> str:
    until = f" until {item.until.isoformat()}" if item.until else ""
    return f"marked expected on {item.created_at.date().isoformat()}{until}: {item.reason or ''}"

"""Feedback: expected patterns suppress later alerts until they expire; precision from verdicts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from anomaly_helpers import AS_OF, shop_fleet

from costwarden.anomaly import evaluate_anomalies, mark_anomaly, record_anomalies
from costwarden.anomaly.feedback import load_feedback, precision, suppression
from costwarden.config import Settings
from costwarden.domain.anomaly import AnomalyReport, Feedback
from costwarden.errors import ConfigError
from costwarden.store import Store

NOW = AS_OF + timedelta(hours=1)


def _pass(store: Store, as_of: datetime = AS_OF) -> AnomalyReport:
    settings = Settings()
    with store.transaction() as session:
        report = evaluate_anomalies(session, settings, as_of, as_of)
        record_anomalies(session, "run", report, settings.anomaly, as_of)
    return report


@pytest.fixture
def shop_store(sqlite_store: Store) -> Store:
    shop_fleet(sqlite_store)
    return sqlite_store


def _mark(store: Store, anomaly_id: str, verdict: str, **options: object) -> Feedback:
    with store.transaction() as session:
        return mark_anomaly(
            session,
            anomaly_id,
            verdict,  # type: ignore[arg-type]
            reason=options.get("reason"),  # type: ignore[arg-type]
            until=options.get("until"),  # type: ignore[arg-type]
            now=NOW,
        )


def test_expected_verdict_suppresses_next_pass(shop_store: Store) -> None:
    first = _pass(shop_store)
    shop = first.anomalies[0]

    _mark(shop_store, shop.anomaly_id[:10], "expected", reason="spring promotion")
    second = _pass(shop_store)

    assert [item.scope.describe() for item in first.anomalies] == ["cluster shop-eks"]
    assert second.anomalies == ()
    assert [item.anomaly_id for item in second.suppressed] == [shop.anomaly_id]
    assert "spring promotion" in (second.suppressed[0].suppressed_by or "")


def test_expected_verdict_expires(shop_store: Store) -> None:
    shop = _pass(shop_store).anomalies[0]

    _mark(shop_store, shop.anomaly_id, "expected", reason="load test", until=AS_OF.date())
    same_day = _pass(shop_store)
    later = _pass(shop_store, AS_OF + timedelta(days=1))

    assert same_day.anomalies == ()
    assert [item.anomaly_id for item in later.anomalies] == [shop.anomaly_id]


def test_problem_verdict_keeps_alerting(shop_store: Store) -> None:
    shop = _pass(shop_store).anomalies[0]

    _mark(shop_store, shop.anomaly_id, "problem")
    again = _pass(shop_store)

    assert [item.anomaly_id for item in again.anomalies] == [shop.anomaly_id]
    assert again.precision.problems == 1
    assert again.precision.value == 1.0


def test_same_scope_and_cause_suppressed() -> None:
    verdict = Feedback("a" * 32, "cluster:c1", "new_namespace", "expected", "migration", None, NOW)
    other_cause = Feedback("b" * 32, "cluster:c1", "spot_fallback", "expected", "x", None, NOW)

    class Scope:
        key = "cluster:c1"

    class Candidate:
        anomaly_id = "c" * 32
        scope = Scope()
        cause = "new_namespace"

    assert suppression(Candidate(), [verdict], date(2026, 12, 1)) is not None  # type: ignore[arg-type]
    assert suppression(Candidate(), [other_cause], date(2026, 12, 1)) is None  # type: ignore[arg-type]
    expired = Feedback(
        "a" * 32, "cluster:c1", "new_namespace", "expected", "m", date(2026, 11, 30), NOW
    )
    assert suppression(Candidate(), [expired], date(2026, 12, 1)) is None  # type: ignore[arg-type]


def test_precision_counts_latest_verdict() -> None:
    def verdict(anomaly: str, value: str) -> Feedback:
        return Feedback(anomaly * 32, "scope", "cause", value, "r", None, NOW)  # type: ignore[arg-type]

    feedback = [
        verdict("a", "problem"),
        verdict("b", "problem"),
        verdict("c", "expected"),
        verdict("d", "expected"),
        verdict("d", "problem"),
    ]

    figure = precision(feedback)

    assert (figure.problems, figure.expected) == (3, 1)
    assert figure.value == pytest.approx(0.75)
    assert precision([]).value is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"verdict": "expected"}, "needs a reason"),
        ({"verdict": "expected", "reason": "  "}, "needs a reason"),
        ({"verdict": "problem", "until": date(2026, 12, 1)}, "--until applies to --expected"),
        ({"verdict": "expected", "reason": "r", "until": date(2026, 1, 1)}, "before the anomaly"),
    ],
)
def test_mark_rejects_bad_verdict(shop_store: Store, options: dict, message: str) -> None:
    shop = _pass(shop_store).anomalies[0]
    verdict = options.pop("verdict")

    with pytest.raises(ConfigError, match=message):
        _mark(shop_store, shop.anomaly_id, verdict, **options)
    with shop_store.transaction() as session:
        assert load_feedback(session) == []


@pytest.mark.parametrize(
    ("anomaly_id", "message"), [("abc", "too short"), ("ffffffff", "no anomaly")]
)
def test_mark_rejects_unknown_id(shop_store: Store, anomaly_id: str, message: str) -> None:
    _pass(shop_store)

    with pytest.raises(ConfigError, match=message):
        _mark(shop_store, anomaly_id, "problem")


def test_feedback_stored_on_each_database(store: Store) -> None:
    shop_fleet(store)
    shop = _pass(store).anomalies[0]

    _mark(store, shop.anomaly_id, "expected", reason="promotion", until=date(2026, 12, 31))

    with store.transaction() as session:
        stored = load_feedback(session)
    assert [(item.verdict, item.until, item.cause) for item in stored] == [
        ("expected", date(2026, 12, 31), "new_namespace")
    ]
    assert stored[0].created_at == NOW.astimezone(UTC)

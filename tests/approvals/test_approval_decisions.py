"""Approval tokens and decisions: forged, expired, reused and mismatched tokens never run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from costwarden.approvals.decisions import decide
from costwarden.approvals.requests import open_request
from costwarden.approvals.tokens import ApprovalTokenSigner
from costwarden.config import Settings
from costwarden.domain.governance import ActionRequest, ActionScope, PolicyDecision
from costwarden.errors import ApprovalError
from costwarden.store import Store
from costwarden.store.tables import ApprovalDecisionRecord, AuditEntryRecord

SECRET = "decision-test-secret-91c2-5d8e0a7b4f"
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


class ContextCalls:
    """A context factory that records each call and refuses to build a context."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, settings: Settings, tenant: str) -> Any:
        self.calls += 1
        raise AssertionError("the runner was reached")


def make_settings(store_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=store_url, notify={"link_secret": SECRET}, **overrides)


def make_request(size: int = 2) -> ActionRequest:
    scope = ActionScope(kind="machine_pool", cluster_uid="c-1", cluster="prod-eks", name="gpu",
                        labels={"env": "prod"})
    return ActionRequest("palette.resize_pool", scope, {"size": size}, "recommendation",
                         "rec-1", {"size": 8})


def open_pending(store: Store, request: ActionRequest, groups: tuple[str, ...] = (),
                 required: int = 2) -> str:
    decision = PolicyDecision(request.action, "approve", "p", True, required, groups,
                              digest=request.digest)
    with store.transaction() as session:
        record, created = open_request(session, "default", request, decision, {}, now=NOW,
                                       ttl_hours=24)
        assert created
        return record.id


def decisions(store: Store) -> int:
    with store.transaction() as session:
        return len(session.scalars(select(ApprovalDecisionRecord)).all())


def refusals(store: Store) -> int:
    with store.transaction() as session:
        rows = session.scalars(select(AuditEntryRecord.detail)).all()
        return sum(1 for detail in rows if detail.get("event") == "refused")


@pytest.fixture
def store(sqlite_url: str) -> Store:
    opened = Store.open(sqlite_url)
    yield opened
    opened.close()


def test_token_roundtrip_and_forgery() -> None:
    signer = ApprovalTokenSigner(SECRET)
    token = signer.issue("r-1", "d" * 64, "approve", NOW + timedelta(hours=1))

    claims = signer.verify(token, NOW)

    assert (claims.request_id, claims.digest, claims.decision) == ("r-1", "d" * 64, "approve")
    with pytest.raises(ApprovalError, match="signature"):
        ApprovalTokenSigner("another-secret").verify(token, NOW)
    with pytest.raises(ApprovalError, match="expired"):
        signer.verify(token, NOW + timedelta(hours=2))


def test_reused_link_token_is_refused(store: Store, sqlite_url: str) -> None:
    settings = make_settings(sqlite_url)
    request = make_request()
    request_id = open_pending(store, request)
    signer = ApprovalTokenSigner(SECRET)
    token = signer.issue(request_id, request.digest, "approve", NOW + timedelta(hours=1))
    claims = signer.verify(token, NOW)
    calls = ContextCalls()

    first = decide(store, settings, request_id=request_id, vote="approve", actor="alice",
                   channel="link", now=NOW, claims=claims, context_factory=calls)
    assert first.status == "recorded"
    with pytest.raises(ApprovalError, match="already used"):
        decide(store, settings, request_id=request_id, vote="approve", actor="bob",
               channel="link", now=NOW, claims=claims, context_factory=calls)

    assert decisions(store) == 1
    assert refusals(store) == 1
    assert calls.calls == 0


def test_mismatched_token_is_refused(store: Store, sqlite_url: str) -> None:
    settings = make_settings(sqlite_url)
    request = make_request()
    request_id = open_pending(store, request, required=1)
    signer = ApprovalTokenSigner(SECRET)
    other = make_request(size=0).digest
    claims = signer.verify(
        signer.issue(request_id, other, "approve", NOW + timedelta(hours=1)), NOW
    )
    calls = ContextCalls()

    with pytest.raises(ApprovalError, match="another change"):
        decide(store, settings, request_id=request_id, vote="approve", actor="alice",
               channel="link", now=NOW, claims=claims, context_factory=calls)
    reject_claims = signer.verify(
        signer.issue(request_id, request.digest, "reject", NOW + timedelta(hours=1)), NOW
    )
    with pytest.raises(ApprovalError, match="is for reject"):
        decide(store, settings, request_id=request_id, vote="approve", actor="alice",
               channel="link", now=NOW, claims=reject_claims, context_factory=calls)

    assert decisions(store) == 0
    assert calls.calls == 0


def test_actor_outside_groups_is_refused(store: Store, sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, approvals={"groups": {"sre": ["alice"]}})
    request = make_request()
    request_id = open_pending(store, request, groups=("sre",), required=1)

    with pytest.raises(ApprovalError, match="not a member"):
        decide(store, settings, request_id=request_id, vote="approve", actor="mallory",
               channel="cli", now=NOW, context_factory=ContextCalls())

    assert decisions(store) == 0
    assert refusals(store) == 1


def test_reject_closes_request(store: Store, sqlite_url: str) -> None:
    settings = make_settings(sqlite_url)
    request_id = open_pending(store, make_request(), required=1)
    calls = ContextCalls()

    rejected = decide(store, settings, request_id=request_id, vote="reject", actor="alice",
                      channel="cli", now=NOW, context_factory=calls)
    later = decide(store, settings, request_id=request_id, vote="approve", actor="bob",
                   channel="cli", now=NOW, context_factory=calls)

    assert rejected.request_status == "rejected"
    assert later.status == "unchanged"
    assert calls.calls == 0


def test_expired_request_is_refused(store: Store, sqlite_url: str) -> None:
    settings = make_settings(sqlite_url)
    request_id = open_pending(store, make_request(), required=1)

    with pytest.raises(ApprovalError, match="expired"):
        decide(store, settings, request_id=request_id, vote="approve", actor="alice",
               channel="cli", now=NOW + timedelta(hours=25), context_factory=ContextCalls())

    assert decisions(store) == 0


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_token_other_spelling_rejected() -> None:
    signer = ApprovalTokenSigner(SECRET)
    token = signer.issue("r-1", "d" * 64, "approve", NOW + timedelta(hours=1))
    accepted = []

    for index in range(len("apr1."), len(token)):
        for char in BASE64URL + ".":
            tampered = token[:index] + char + token[index + 1:]
            if tampered == token:
                continue
            try:
                signer.verify(tampered, NOW)
            except ApprovalError:
                continue
            accepted.append((index, char))

    assert accepted == []


@hypothesis_settings(max_examples=100, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=5, max_value=400), char=st.sampled_from(BASE64URL + "."))
def test_tampered_tokens_never_verify(position: int, char: str) -> None:
    signer = ApprovalTokenSigner(SECRET)
    token = signer.issue("r-1", "d" * 64, "approve", NOW + timedelta(hours=1))
    index = position % len(token)
    tampered = token[:index] + char + token[index + 1:]
    if tampered == token:
        return

    with pytest.raises(ApprovalError):
        signer.verify(tampered, NOW)

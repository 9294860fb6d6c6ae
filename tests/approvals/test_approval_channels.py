"""Approval requests decided through the channels: Teams and email links that open the signed
approval page, the page itself, and a Jira transition. The notices go through the real outbox
and delivery worker to the fakes; the service runs on 127.0.0.1 and the approved change reaches
the Palette simulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from approval_helpers import (
    LINK_SECRET,
    PUBLIC_URL,
    approval_settings,
    audit_events,
    open_request,
    pool_recommendation,
    pool_size,
    puts,
    refusal_count,
    request_status,
    running_service,
    seed_cluster,
    wait_for,
    write_policy,
)
from fakes.jira import FakeJira
from fakes.smtp import FakeSmtp
from fakes.teams import FakeTeams
from sqlalchemy import select

from costwarden.approvals import GovernanceReport, govern_recommendations
from costwarden.approvals.decisions import decide
from costwarden.approvals.tokens import ApprovalTokenSigner
from costwarden.config import Settings
from costwarden.errors import ApprovalError
from costwarden.notify.build import recommendation_alert_id
from costwarden.notify.channels import build_channels
from costwarden.notify.outbox import PassNotifier
from costwarden.notify.worker import DeliveryWorker
from costwarden.simulator import SimulatorServer
from costwarden.simulator.server import LOOPBACK
from costwarden.store import Store
from costwarden.store.tables import (
    AlertResponseRecord,
    ApprovalDecisionRecord,
    ApprovalRequestRecord,
)

CLUSTER = "ml-training-eks"
POOL = "gpu-training"
JIRA_CHANNEL = "finops-jira"
JIRA_SECRET = "jira-webhook-secret-for-approvals-2c7e"
APPROVER = "557058:dana-approver"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = Store.open(sqlite_url)
    yield opened
    opened.close()


def link_settings(sqlite_url: str, sim: SimulatorServer, tmp_path: Path, **overrides: Any
                  ) -> Settings:
    policy = write_policy(tmp_path / "policy.yaml", approvers=overrides.pop("approvers", ()))
    return approval_settings(sqlite_url, sim, policy, **overrides)


def channel_settings(sqlite_url: str, sim: SimulatorServer, tmp_path: Path, teams: FakeTeams,
                     smtp: FakeSmtp, jira: FakeJira) -> Settings:
    """Settings that route recommendations to a Teams, an email and a Jira channel."""
    mail = {
        "type": "email", "host": LOOPBACK, "port": smtp.port, "starttls": False,
        "sender": "costwarden@example.com", "recipients": ["finops@example.com"],
        "timeout_seconds": 5, "digest_only": False,
    }
    jira_options = jira.channel_options(webhook_secret=JIRA_SECRET, approvers=[APPROVER])
    notify = {
        "channels": {"finops-teams": teams.settings(), "finops-mail": mail,
                     JIRA_CHANNEL: jira_options},
        "routes": [{"name": "savings", "kinds": ["recommendation"],
                    "channels": ["finops-teams", "finops-mail", JIRA_CHANNEL]}],
        "noise": {"digest_below": None},
    }
    return link_settings(sqlite_url, sim, tmp_path, notify=notify)


def deliver(store: Store, settings: Settings, item: dict[str, Any], report: GovernanceReport
            ) -> None:
    """Queue the recommendation's notice with its approval, as a pass does, and send it."""
    with store.transaction() as session:
        PassNotifier(settings.notify, datetime.now(UTC)).recommendations(
            session, [item], report.approvals
        )
    worker = DeliveryWorker(store, settings.notify, build_channels(settings.notify))
    try:
        worker.run_once()
    finally:
        worker.close()


def tokens_of(report: GovernanceReport, item: dict[str, Any]) -> tuple[str, str]:
    approval = report.approvals[recommendation_alert_id(item["id"])]
    return approval["approve_token"], approval["reject_token"]


def card_links(teams: FakeTeams) -> dict[str, str]:
    [card] = teams.state.cards
    return {action["title"]: action["url"] for action in card["actions"]
            if action["type"] == "Action.OpenUrl"}


def decisions(store: Store, request_id: str) -> list[ApprovalDecisionRecord]:
    with store.transaction() as session:
        rows = session.scalars(
            select(ApprovalDecisionRecord).where(ApprovalDecisionRecord.request_id == request_id)
        ).all()
        session.expunge_all()
        return list(rows)


def test_teams_and_email_links_open_approval_page(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    with FakeTeams() as teams, FakeSmtp() as smtp, FakeJira() as jira:
        settings = channel_settings(sqlite_url, sim, tmp_path, teams, smtp, jira)
        seed_cluster(store, sim, CLUSTER, {"env": "dev"})
        item = pool_recommendation(sim, CLUSTER, POOL, 4)
        request_id, report = open_request(store, settings, item)
        approve_token, reject_token = tokens_of(report, item)

        deliver(store, settings, item, report)

        links = card_links(teams)
        [mail] = smtp.messages
        text, html = mail.part("text/plain"), mail.part("text/html")
        with running_service(settings, store) as url:
            page = httpx.get(url + urlsplit(links["Approve"]).path)
            decided = httpx.post(url + urlsplit(links["Approve"]).path,
                                 data={"actor": "dana@example.com"})

    assert links["Approve"] == f"{PUBLIC_URL}/actions/{approve_token}"
    assert links["Reject"] == f"{PUBLIC_URL}/actions/{reject_token}"
    for body in (text, html):
        assert f"{PUBLIC_URL}/actions/{approve_token}" in body
        assert f"{PUBLIC_URL}/actions/{reject_token}" in body
    assert page.status_code == 200
    assert request_id in page.text
    assert decided.status_code == 200, decided.text
    assert "Approved and applied" in decided.text
    assert pool_size(sim, CLUSTER, POOL) == 4
    assert len(puts(sim)) == 1


def test_link_page_decides_once(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = link_settings(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, {"env": "dev"})
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, report = open_request(store, settings, item)
    approve_token, reject_token = tokens_of(report, item)

    with running_service(settings, store) as url:
        shown = httpx.get(f"{url}/actions/{approve_token}")
        shown_twice = httpx.get(f"{url}/actions/{approve_token}")
        assert decisions(store, request_id) == []
        first = httpx.post(f"{url}/actions/{approve_token}", data={"actor": "dana@example.com"})
        writes = list(sim.state.writes)
        reused = httpx.post(f"{url}/actions/{approve_token}", data={"actor": "erin@example.com"})
        late_reject = httpx.post(f"{url}/actions/{reject_token}", data={"actor": "erin"})

    assert shown.status_code == 200
    assert shown_twice.status_code == 200
    assert "palette.resize_pool" in shown.text
    assert request_id in shown.text
    assert '<form method="post">' in shown.text
    assert shown.headers["Cache-Control"] == "no-store"
    assert first.status_code == 200, first.text
    assert "Approved and applied" in first.text
    [decision] = decisions(store, request_id)
    assert decision.actor == "dana@example.com"
    assert decision.channel == "link"
    assert decision.token_id is not None
    assert len(puts(sim)) == 1
    assert reused.status_code == 409
    assert "already executed" in reused.text
    assert late_reject.status_code == 409
    assert sim.state.writes == writes
    assert request_status(store, request_id) == "executed"


def test_link_reuse_while_pending_refused(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = link_settings(sqlite_url, sim, tmp_path, policy={"production_min_approvals": 2})
    seed_cluster(store, sim, CLUSTER, {"env": "production"})
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, report = open_request(store, settings, item)
    approve_token, reject_token = tokens_of(report, item)

    with running_service(settings, store) as url:
        first = httpx.post(f"{url}/actions/{approve_token}", data={"actor": "dana"})
        reused = httpx.post(f"{url}/actions/{approve_token}", data={"actor": "erin"})
        rejected = httpx.post(f"{url}/actions/{reject_token}", data={"actor": "erin"})

    assert first.status_code == 200, first.text
    assert "0 of 2" in first.text
    assert "signed links" in first.text
    assert reused.status_code == 409
    assert "already used" in reused.text
    assert rejected.status_code == 200
    assert "Rejected" in rejected.text
    assert request_status(store, request_id) == "rejected"
    assert [item.actor for item in decisions(store, request_id)] == ["dana", "erin"]
    assert sim.state.writes == []


def test_forged_and_expired_links_refused(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = link_settings(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, {"env": "dev"})
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, report = open_request(store, settings, item)
    approve_token, _ = tokens_of(report, item)
    with store.transaction() as session:
        digest = session.get(ApprovalRequestRecord, request_id).params_digest
    past = datetime.now(UTC) - timedelta(minutes=5)
    expired = ApprovalTokenSigner(LINK_SECRET).issue(request_id, digest, "approve", past)
    forged = ApprovalTokenSigner("another-secret-of-the-same-length-00").issue(
        request_id, digest, "approve", datetime.now(UTC) + timedelta(hours=1)
    )
    tampered = approve_token[:-4] + ("AAAA" if not approve_token.endswith("AAAA") else "BBBB")

    with running_service(settings, store) as url:
        pages = {name: httpx.get(f"{url}/actions/{token}")
                 for name, token in (("expired", expired), ("forged", forged),
                                     ("tampered", tampered))}
        posts = {name: httpx.post(f"{url}/actions/{token}", data={"actor": "mallory"})
                 for name, token in (("expired", expired), ("forged", forged),
                                     ("tampered", tampered))}

    for name, page in pages.items():
        assert page.status_code == 401, name
        assert "Invalid approval link" in page.text, name
    assert "expired" in pages["expired"].text
    assert "signature" in pages["forged"].text
    for name, response in posts.items():
        assert response.status_code == 401, name
        assert "Invalid approval link" in response.text, name
    assert decisions(store, request_id) == []
    assert refusal_count(store) == 6
    assert request_status(store, request_id) == "pending"
    assert sim.state.writes == []


def test_jira_transition_decides_request(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    with FakeTeams() as teams, FakeSmtp() as smtp, FakeJira() as jira:
        settings = channel_settings(sqlite_url, sim, tmp_path, teams, smtp, jira)
        seed_cluster(store, sim, CLUSTER, {"env": "dev"})
        item = pool_recommendation(sim, CLUSTER, POOL, 4)
        request_id, report = open_request(store, settings, item)
        deliver(store, settings, item, report)
        [key] = list(jira.issues)

        with running_service(settings, store) as url:
            hook = f"{url}/callbacks/jira"
            approved, _ = jira.send_webhook(hook, jira.transition(key, "Approve", APPROVER),
                                            JIRA_SECRET)
            wait_for(lambda: request_status(store, request_id) == "executed", "the approved run")
            writes = list(sim.state.writes)
            again, _ = jira.send_webhook(hook, jira.transition(key, "Approve", APPROVER),
                                         JIRA_SECRET)

    assert approved.status_code == 204
    assert again.status_code == 204
    [decision] = decisions(store, request_id)
    assert decision.actor == APPROVER
    assert decision.channel == f"jira:{JIRA_CHANNEL}"
    assert decision.detail["issue"] == key
    assert pool_size(sim, CLUSTER, POOL) == 4
    assert len(puts(sim)) == 1
    assert sim.state.writes == writes
    assert audit_events(store, request_id) == ["requested", "approve"]


def test_jira_transition_on_closed_request(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """A transition on the ticket of a superseded request is refused and audited, and is not
    taken as a response to the alert."""
    with FakeTeams() as teams, FakeSmtp() as smtp, FakeJira() as jira:
        settings = channel_settings(sqlite_url, sim, tmp_path, teams, smtp, jira)
        seed_cluster(store, sim, CLUSTER, {"env": "dev"})
        item = pool_recommendation(sim, CLUSTER, POOL, 4)
        request_id, report = open_request(store, settings, item)
        deliver(store, settings, item, report)
        [key] = list(jira.issues)
        write_policy(Path(settings.policy.paths[0]), mode="monitor")
        later = govern_recommendations(store, settings, [item], run_id="run-later",
                                       tenant=settings.service.tenant, now=datetime.now(UTC))
        deliver(store, settings, item, later)
        rejections_before = refusal_count(store)

        with running_service(settings, store) as url:
            response, _ = jira.send_webhook(f"{url}/callbacks/jira",
                                            jira.transition(key, "Approve", APPROVER),
                                            JIRA_SECRET)

    with store.transaction() as session:
        responses = session.scalars(select(AlertResponseRecord)).all()
    assert response.status_code == 204
    assert later.superseded == 1
    assert request_status(store, request_id) == "superseded"
    assert decisions(store, request_id) == []
    assert responses == []
    assert refusal_count(store) == rejections_before + 1
    assert sim.state.writes == []


def test_jira_reject_closes_request(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    with FakeTeams() as teams, FakeSmtp() as smtp, FakeJira() as jira:
        settings = channel_settings(sqlite_url, sim, tmp_path, teams, smtp, jira)
        seed_cluster(store, sim, CLUSTER, {"env": "dev"})
        item = pool_recommendation(sim, CLUSTER, POOL, 4)
        request_id, report = open_request(store, settings, item)
        approve_token, _ = tokens_of(report, item)
        deliver(store, settings, item, report)
        [key] = list(jira.issues)

        with running_service(settings, store) as url:
            response, _ = jira.send_webhook(f"{url}/callbacks/jira",
                                            jira.transition(key, "Decline", APPROVER),
                                            JIRA_SECRET)
            link = httpx.post(f"{url}/actions/{approve_token}", data={"actor": "dana"})

    assert response.status_code == 204
    assert request_status(store, request_id) == "rejected"
    assert [item.decision for item in decisions(store, request_id)] == ["reject"]
    assert link.status_code == 409
    assert "already rejected" in link.text
    assert sim.state.writes == []


def test_expired_request_closes_in_next_pass(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = link_settings(sqlite_url, sim, tmp_path, approvals={"ttl_hours": 2})
    seed_cluster(store, sim, CLUSTER, {"env": "dev"})
    opened_at = datetime.now(UTC) - timedelta(hours=3)
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, report = open_request(store, settings, item, now=opened_at)
    approve_token, _ = tokens_of(report, item)
    claims = ApprovalTokenSigner(LINK_SECRET).verify(approve_token, opened_at)

    next_pass = govern_recommendations(store, settings, [], run_id="run-next",
                                       tenant=settings.service.tenant, now=datetime.now(UTC))

    assert next_pass.expired == 1
    assert request_status(store, request_id) == "expired"
    assert audit_events(store, request_id) == ["requested", "expired"]
    with pytest.raises(ApprovalError, match="expired"):
        decide(store, settings, request_id=request_id, vote="approve", actor="dana",
               channel="link", claims=claims)
    with running_service(settings, store) as url:
        page = httpx.get(f"{url}/actions/{approve_token}")
        post = httpx.post(f"{url}/actions/{approve_token}", data={"actor": "dana"})
    assert page.status_code == 401
    assert "expired" in page.text
    assert post.status_code == 401
    assert decisions(store, request_id) == []
    assert sim.state.writes == []

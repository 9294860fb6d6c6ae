"""Random decision sequences against one approval request, on the Palette simulator.

Each example opens a request to shrink a simulator pool, then plays decisions made with valid,
forged, expired, reused and mismatched tokens, by members and non-members of the approver
group, on production and non-production scopes. The simulator's write log must show a PUT
exactly when a model of the rules predicts that the approvals were complete, and never unless the
decisions stored for the request hold enough distinct approvals from the group.

The request is opened with the decision fields of each example (``marked``, ``required``), while
the policy file and the cluster's labels decide the current decision. When the two differ, the
completed request is superseded before the run instead of running. Signed-link votes count on
production in this world (``approvals.links_count_for_production``), because the examples fuzz
the tokens; test_approval_recheck.py covers the default.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from approval_helpers import LINK_SECRET, find_pool, seed_cluster, simulator_settings
from hypothesis import event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from costwarden.approvals.decisions import decide
from costwarden.approvals.requests import open_request
from costwarden.approvals.tokens import ApprovalTokenSigner
from costwarden.config import Settings
from costwarden.domain.governance import ActionRequest, ActionScope, PolicyDecision, Vote
from costwarden.errors import ApprovalError
from costwarden.simulator import SimulatorServer
from costwarden.store import Store
from costwarden.store.tables import (
    ActionRunRecord,
    ApprovalDecisionRecord,
    ApprovalRequestRecord,
    AuditCheckpointRecord,
    AuditEntryRecord,
)

CLUSTER = "ml-training-eks"
POOL = "gpu-training"
OTHER_POOL = "worker-pool"
TENANT = "default"
GROUP = ("alice", "bob", "carol")
ACTORS = (*GROUP, "mallory")
PRODUCTION_MIN_APPROVALS = 2
TTL_HOURS = 24
NOW = datetime(2026, 3, 15, 13, 0, tzinfo=UTC)
TOKEN_KINDS = (
    "valid", "forged", "expired", "reused", "other_digest", "other_request", "wrong_vote", "late"
)


@dataclass
class World:
    """The one simulator, store and settings shared by every example."""

    sim: SimulatorServer
    store: Store
    settings: Settings
    fleet: object
    policy_file: Path

    def reset(self) -> None:
        """Restore the simulator's fleet and write log and empty the governance tables."""
        with self.sim.state.write_lock:
            self.sim.state.fleet = self.fleet  # type: ignore[assignment]
            self.sim.state.writes.clear()
        with self.store.transaction() as session:
            for table in (ApprovalDecisionRecord, ApprovalRequestRecord, ActionRunRecord,
                          AuditEntryRecord, AuditCheckpointRecord):
                session.execute(delete(table))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "fuzz.db"
    policy_file = folder / "policies.yaml"
    with SimulatorServer(simulator_settings()) as sim:
        settings = Settings(
            database_url=f"sqlite:///{path}",
            palette={"url": sim.url, "api_key": sim.api_key, "max_retries": 0,
                     "backoff_base_seconds": 0, "backoff_max_seconds": 0},
            policy={"mode": "approve", "production_min_approvals": PRODUCTION_MIN_APPROVALS,
                    "paths": [policy_file]},
            approvals={"ttl_hours": TTL_HOURS, "groups": {"sre": list(GROUP)},
                       "links_count_for_production": True},
            notify={"link_secret": LINK_SECRET, "public_url": "https://costwarden.example.com"},
        )
        store = Store.open(settings.database_url)
        try:
            yield World(sim, store, settings, sim.state.fleet, policy_file)
        finally:
            store.close()


def write_policy(path: Path, *, marked: bool, required: int) -> None:
    """Write the policy that decides the examples' requests now."""
    action = {"action": "palette.resize_pool", "mode": "approve", "approvers": ["sre"],
              "min_approvals": required}
    policy = {"name": "fuzz", "selector": {"kinds": ["machine_pool"]}, "actions": [action],
              "production": marked}
    path.write_text(yaml.safe_dump({"policies": [policy]}), encoding="utf-8")


def pool_request(sim: SimulatorServer, pool_name: str, production: bool) -> ActionRequest:
    cluster = next(item for item in sim.state.fleet.clusters if item.name == CLUSTER)
    pool = find_pool(sim, CLUSTER, pool_name)
    scope = ActionScope(
        kind="machine_pool", cluster_uid=cluster.uid, cluster=cluster.name, name=pool.name,
        project=cluster.project.name, cloud=cluster.cloud_type,
        labels={"env": "production" if production else "dev"},
    )
    return ActionRequest("palette.resize_pool", scope, {"size": pool.min_size}, "recommendation",
                         f"rec-{pool_name}", {"size": pool.size})


def open_pending(store: Store, request: ActionRequest, *, marked: bool, required: int) -> str:
    decision = PolicyDecision(request.action, "approve", "fuzz", marked, required, ("sre",),
                              digest=request.digest)
    with store.transaction() as session:
        record, created = open_request(session, TENANT, request, decision, {},
                                       now=NOW - timedelta(hours=1), ttl_hours=TTL_HOURS)
        assert created
        return record.id


@dataclass
class Model:
    """What the rules allow: the request's state, its approvers and the tokens used up."""

    required: int
    guard_required: int
    current: bool = True
    """Whether the request's decision fields equal the decision under the current policies."""
    state: str = "pending"
    approvers: set[str] = field(default_factory=set)
    voters: set[str] = field(default_factory=set)
    used: set[str] = field(default_factory=set)
    puts: int = 0

    def play(self, kind: str, token: str, actor: str, vote: Vote) -> None:
        if kind in ("forged", "expired", "other_digest", "other_request", "wrong_vote"):
            return
        if self.state != "pending" or token in self.used:
            return
        if kind == "late":
            self.state = "expired"
            return
        if actor not in GROUP or actor in self.voters:
            return
        self.voters.add(actor)
        self.used.add(token)
        if vote == "reject":
            self.state = "rejected"
            return
        self.approvers.add(actor)
        if len(self.approvers) < self.required:
            return
        if not self.current:
            self.state = "superseded"
        elif len(self.approvers) >= self.guard_required:
            self.state = "executed"
            self.puts += 1
        else:
            self.state = "failed"


steps = st.lists(
    st.tuples(st.sampled_from(TOKEN_KINDS), st.sampled_from(ACTORS),
              st.sampled_from(("approve", "approve", "reject"))),
    min_size=1, max_size=6,
)


@hypothesis_settings(max_examples=40, deadline=None)
@given(labelled=st.booleans(), marked=st.booleans(), required=st.integers(1, 2), plays=steps)
def test_no_put_without_required_approvals(
    world: World, labelled: bool, marked: bool, required: int,
    plays: list[tuple[str, str, Vote]],
) -> None:
    world.reset()
    sim, store, settings = world.sim, world.store, world.settings
    current_required = max(required, PRODUCTION_MIN_APPROVALS) if labelled or marked else required
    write_policy(world.policy_file, marked=marked, required=required)
    seed_cluster(store, sim, CLUSTER, {"env": "production" if labelled else "dev"})
    request = pool_request(sim, POOL, labelled)
    other = pool_request(sim, OTHER_POOL, labelled)
    request_id = open_pending(store, request, marked=marked, required=required)
    other_id = open_pending(store, other, marked=marked, required=required)
    production = labelled or marked
    guard_required = max(required, PRODUCTION_MIN_APPROVALS) if production else required
    current = marked == production and required == current_required
    model = Model(required=required, guard_required=guard_required, current=current)

    signer = ApprovalTokenSigner(LINK_SECRET)
    forger = ApprovalTokenSigner("a-different-secret-of-40-characters-0000")
    valid_until = NOW + timedelta(hours=2)
    last_token: str | None = None
    for kind, actor, vote in plays:
        opposite: Vote = "reject" if vote == "approve" else "approve"
        decided_vote, when = vote, NOW
        if kind == "reused" and last_token is not None:
            token = last_token
        elif kind == "forged":
            token = forger.issue(request_id, request.digest, vote, valid_until)
        elif kind == "expired":
            token = signer.issue(request_id, request.digest, vote, NOW - timedelta(minutes=1))
        elif kind == "other_digest":
            token = signer.issue(request_id, other.digest, vote, valid_until)
        elif kind == "other_request":
            token = signer.issue(other_id, other.digest, vote, valid_until)
        else:
            token = signer.issue(request_id, request.digest, vote, valid_until)
        if kind == "wrong_vote":
            decided_vote = opposite
        if kind == "late":
            when = NOW + timedelta(hours=TTL_HOURS + 1)
        if kind in ("valid", "reused", "late"):
            last_token = token

        try:
            claims = signer.verify(token, NOW)
            if kind != "wrong_vote":
                decided_vote = claims.decision
            decide(store, settings, request_id=request_id, vote=decided_vote, actor=actor,
                   channel="link", now=when, claims=claims, tenant=TENANT)
        except ApprovalError:
            pass
        model.play(kind, token, actor, claims_vote(signer, token, vote))

    writes = [entry for entry in sim.state.writes if entry[0] == "PUT"]
    assert len(writes) == model.puts
    assert len(writes) <= 1
    with store.transaction() as session:
        status = session.get(ApprovalRequestRecord, request_id).status
        other_status = session.get(ApprovalRequestRecord, other_id).status
        approvers = {
            row.actor.casefold()
            for row in session.scalars(
                select(ApprovalDecisionRecord).where(
                    ApprovalDecisionRecord.request_id == request_id,
                    ApprovalDecisionRecord.decision == "approve",
                )
            )
            if row.actor in GROUP
        }
    assert status == model.state
    event(f"final state {model.state}")
    assert other_status == "pending"
    if writes:
        assert len(approvers) >= guard_required


def claims_vote(signer: ApprovalTokenSigner, token: str, fallback: Vote) -> Vote:
    """Return the decision a token carries, or ``fallback`` for a token that does not verify."""
    try:
        return signer.verify(token, NOW).decision
    except ApprovalError:
        return fallback

"""End to end on the simulator: a forecast overrun, a recommendation, a Jira ticket and a Slack
message; a signed Slack approval resizes the pool through the Palette simulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from fakes.jira import FakeJira
from fakes.loopback import LoopbackServer
from fakes.slack import FakeSlack, InteractionDriver
from sqlalchemy import select

from costwarden.audit.verify import verify
from costwarden.budgets.loader import load_budgets
from costwarden.cli.run import DEMO_AS_OF, DEMO_SEED, demo_budgets_file
from costwarden.config import Settings
from costwarden.notify.slack import ACTION_IDS
from costwarden.pipeline import run_pass
from costwarden.service.app import create_app
from costwarden.service.runner import PassRunner
from costwarden.service.state import ServiceState
from costwarden.simulator import SimulatorServer, SimulatorSettings
from costwarden.store import Store
from costwarden.store.tables import (
    ActionRunRecord,
    ApprovalRequestRecord,
    AuditEntryRecord,
)

POOL = "gpu-training"
CLUSTER = "ml-training-eks"
LINK_SECRET = "e2e-link-secret-5b7f-0c94d2a1e6b3f87"
PUBLIC_URL = "https://costwarden.example.com"
WAIT_SECONDS = 30.0


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    settings = SimulatorSettings(
        seed=DEMO_SEED, as_of=DEMO_AS_OF, rate_limit_enabled=False, cluster_count=8,
        history_days=60,
    )
    with SimulatorServer(settings) as server:
        yield server


def write_policy(path: Path) -> Path:
    path.write_text(yaml.safe_dump({"policies": [{
        "name": "idle-gpu-pools",
        "selector": {"kinds": ["machine_pool"], "names": [POOL]},
        "actions": [{"action": "palette.resize_pool", "mode": "approve"}],
    }]}), encoding="utf-8")
    return path


def e2e_settings(tmp_path: Path, sim: SimulatorServer, slack: FakeSlack, jira: FakeJira,
                 public_url: str) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'e2e.db'}",
        palette={"url": sim.url, "api_key": sim.api_key, "backoff_base_seconds": 0},
        quota={"enabled": True},
        recommend={"options": {"idle-pools": {"max_cpu_percent": 100}}},
        policy={"paths": [write_policy(tmp_path / "policy.yaml")], "mode": "approve"},
        service={"schedule": None, "shutdown_grace_seconds": 5.0},
        notify={
            "link_secret": LINK_SECRET,
            "public_url": public_url,
            "channels": {
                "finops-slack": slack.bot_settings(rate_per_second=50, burst=50),
                "finops-jira": {**jira.channel_options(), "rate_per_second": 50, "burst": 50},
            },
            "routes": [
                {"name": "savings", "channels": ["finops-slack"], "kinds": ["recommendation"]},
                {"name": "budgets", "channels": ["finops-jira"], "kinds": ["budget"]},
            ],
            "noise": {"digest_below": None},
        },
    )


def approve_button(slack: FakeSlack) -> dict[str, Any]:
    """Return the Approve button of the Slack message about the idle GPU pool."""
    for message in slack.channel_messages():
        text = str(message)
        if POOL not in text or CLUSTER not in text:
            continue
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == ACTION_IDS["approve"]:
                    return element
    raise AssertionError(f"no Slack message with an Approve button for {CLUSTER}/{POOL}")


def wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def pool_size(sim: SimulatorServer) -> int:
    cluster = next(c for c in sim.state.fleet.clusters if c.name == CLUSTER)
    return next(pool.size for pool in cluster.pools if pool.name == POOL)


def test_slack_approval_resizes_pool(tmp_path: Path, simulator: SimulatorServer) -> None:
    original_size = pool_size(simulator)
    assert original_size > 0
    with FakeSlack(post_interval=0) as slack, FakeJira() as jira:
        settings = e2e_settings(tmp_path, simulator, slack, jira, PUBLIC_URL)
        store = Store.open(settings.database_url)
        budgets = load_budgets(demo_budgets_file())

        result = run_pass(store, settings, budgets, DEMO_AS_OF)

        assert any(alert.kind == "budget_forecast" for alert in result.alerts)
        with store.transaction() as session:
            [request] = session.scalars(
                select(ApprovalRequestRecord).where(ApprovalRequestRecord.target["name"]
                                                    .as_string() == POOL)
            ).all()
            assert request.status == "pending"
            assert request.production
            assert request.evidence["expected"]["size"] == original_size
            request_id = request.id

        state = ServiceState(settings=settings, store=store, runner=PassRunner(settings, store))
        app = create_app(state)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        service = LoopbackServer(app, "costwarden service", config=config)
        service.start()
        try:
            button = wait_for(lambda: _approve_or_none(slack), "the Slack message")
            wait_for(lambda: jira.issues, "the Jira ticket")
            assert button["value"].startswith("apr1.")
            assert simulator.state.writes == []

            driver = InteractionDriver(f"{service.url}/callbacks/slack")
            response_url = slack.response_url()
            first = driver.click(driver.payload(ACTION_IDS["approve"], button["value"],
                                                user="U0ALICE", response_url=response_url))
            assert first.status_code == 200

            run = wait_for(lambda: _succeeded_run(store, request_id), "the approved run")
            assert pool_size(simulator) == 0
            writes = list(simulator.state.writes)
            assert [entry[0] for entry in writes] == ["PUT"]

            second = driver.click(driver.payload(ACTION_IDS["approve"], button["value"],
                                                 user="U0ALICE", response_url=response_url))
            assert second.status_code == 200
            wait_for(lambda: len(slack.state.follow_ups) >= 2, "the second follow-up")
        finally:
            service.stop()

        assert simulator.state.writes == writes
        assert "already executed" in slack.state.follow_ups[-1]["text"]
        with store.transaction() as session:
            runs = session.scalars(
                select(ActionRunRecord).where(ActionRunRecord.mode == "apply")
            ).all()
            assert [item.id for item in runs] == [run]
            assert session.get(ApprovalRequestRecord, request_id).status == "executed"
            kinds = set(session.scalars(select(AuditEntryRecord.kind)))
            report = verify(session, settings.service.tenant)
        store.close()

    for kind in ("ingest", "forecast", "alert", "recommendation", "notification", "approval",
                 "action", "policy"):
        assert kind in kinds, kind
    assert report.ok, report


def _approve_or_none(slack: FakeSlack) -> dict[str, Any] | None:
    try:
        return approve_button(slack)
    except AssertionError:
        return None


def _succeeded_run(store: Store, request_id: str) -> str | None:
    with store.transaction() as session:
        run = session.scalars(
            select(ActionRunRecord).where(
                ActionRunRecord.request_id == request_id, ActionRunRecord.status == "succeeded"
            )
        ).first()
        return run.id if run is not None else None

"""``costwarden run`` sends the notifications it queued, unless told not to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from fakes.webhook_receiver import start

from costwarden.cli.run import DEMO_AS_OF, DEMO_SEED, demo_budgets_file
from costwarden.simulator import SimulatorServer, SimulatorSettings
from costwarden.store import Store
from costwarden.store.tables import OutboxRecord

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def costwarden(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costwarden", "--config", str(config), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )


def statuses(database: Path) -> dict[str, int]:
    store = Store.open(f"sqlite:///{database}")
    try:
        with store.transaction() as session:
            rows = session.query(OutboxRecord.status).all()
    finally:
        store.close()
    counts: dict[str, int] = {}
    for (status,) in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_run_sends_queued_notifications_unless_no_deliver(tmp_path: Path) -> None:
    database = tmp_path / "costwarden.db"
    simulator = SimulatorServer(
        SimulatorSettings(seed=DEMO_SEED, as_of=DEMO_AS_OF, rate_limit_enabled=False)
    )
    with start(SECRET) as receiver, simulator:
        config = tmp_path / "costwarden.yaml"
        config.write_text(yaml.safe_dump({
            "database_url": f"sqlite:///{database}",
            "palette": {"url": simulator.url, "api_key": simulator.api_key},
            "notify": {
                "channels": {
                    "hook": {"type": "webhook", "url": receiver.url, "secret": SECRET,
                             "rate_per_second": 500, "burst": 50},
                },
                "routes": [{"name": "all", "channels": ["hook"], "kinds": ["budget", "anomaly"]}],
                "noise": {"digest_below": None},
            },
        }), encoding="utf-8")
        budgets = str(demo_budgets_file())
        as_of = DEMO_AS_OF.isoformat()

        held = costwarden(config, "run", "--budgets", budgets, "--as-of", as_of, "--no-deliver")
        assert held.returncode == 0, held.stderr[-2000:]
        queued = statuses(database)
        assert queued.get("pending", 0) > 0
        assert receiver.received == []

        sent = costwarden(config, "run", "--budgets", budgets, "--as-of", as_of, "--no-ingest")
        assert sent.returncode == 0, sent.stderr[-2000:]
        assert "Notifications:" in sent.stderr

    after = statuses(database)
    assert after.get("pending", 0) == 0
    assert after.get("sent", 0) == queued["pending"]
    assert len(receiver.received) == queued["pending"]
    assert {item.payload["type"] for item in receiver.received} <= {
        "alert.triggered", "alert.updated",
    }

"""No channel secret shows up anywhere after a full pass and failing deliveries.

Every channel type is configured with distinctive secret values, given inline, as
``{env: NAME}`` and as ``{file: PATH}``. A pass on the simulated fleet queues alerts to all of
them, and the deliveries fail in the ways real services fail: 401, ``ok: false``, 500, a timeout
and a refused connection. The DEBUG JSON logs of every command, the command output, the stored
database file, the API responses and ``config check`` are then searched for each secret.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from delivery_helpers import Receiver, Reply, ServiceServer, wait_for
from typer.testing import CliRunner

from costwarden.cli import app
from costwarden.cli.run import DEMO_AS_OF, DEMO_SEED, demo_budgets_file
from costwarden.config import load_settings
from costwarden.errors import CostwardenError
from costwarden.logging_setup import configure_logging
from costwarden.simulator import SimulatorServer, SimulatorSettings
from costwarden.simulator.server import bind_socket
from costwarden.store import Store

WEBHOOK_KEY = b"WebhookSigningKey6Y0abcdefgh"
SECRETS = {
    "slack_hook": "SlackHookPathSecret7Q2",
    "slack_token": "xoxb-SlackBotTokenSecret8R3",
    "slack_signing": "SlackSigningSecret9S4",
    "teams_sig": "TeamsSigSecret1T5",
    "jira_token": "JiraApiTokenSecret2U6",
    "jira_webhook": "JiraWebhookSecret3V7",
    "snow_password": "SnowPasswordSecret4W8",
    "pagerduty": "PDRoutingKeySecret5X9abcdefghijk",
    "webhook_secret": "whsec_" + base64.b64encode(WEBHOOK_KEY).decode(),
    "webhook_header": "WebhookHeaderSecret7Z1",
    "smtp_password": "SmtpPasswordSecret8A2",
    "link_secret": "LinkSigningSecret9B3-7d0e4c1a5f2b8e63",
    "api_key": "ServiceApiKeySecret0C4",
}
"""Every secret value; the webhook key is also searched for in its base64 form alone."""

ENV = {
    "CW_TEST_SLACK_TOKEN": SECRETS["slack_token"],
    "CW_TEST_JIRA_TOKEN": SECRETS["jira_token"],
    "CW_TEST_PAGERDUTY": SECRETS["pagerduty"],
    "CW_TEST_LINK_SECRET": SECRETS["link_secret"],
}


def closed_port() -> int:
    """Return a loopback port with no listener, so connections are refused."""
    sock = bind_socket("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def secret_file(tmp_path: Path, name: str, value: str) -> dict[str, str]:
    path = tmp_path / f"{name}.secret"
    path.write_text(value + "\n", encoding="utf-8")
    return {"file": str(path)}


def notify_config(tmp_path: Path, receiver: Receiver) -> dict[str, Any]:
    """Every channel type, each pointed at a receiver path that fails."""
    slack_hook = receiver.url(f"slack/services/T01/B02/{SECRETS['slack_hook']}")
    teams_url = receiver.url(f"teams/invoke?api-version=1&sig={SECRETS['teams_sig']}")
    channels = {
        "slack-hook": {"type": "slack", "webhook_url": secret_file(tmp_path, "hook", slack_hook)},
        "slack-bot": {
            "type": "slack", "bot_token": {"env": "CW_TEST_SLACK_TOKEN"}, "channel": "C0123ABCD",
            "signing_secret": SECRETS["slack_signing"], "api_url": receiver.url("slackapi"),
        },
        "teams": {"type": "teams", "workflow_url": secret_file(tmp_path, "teams", teams_url)},
        "jira": {
            "type": "jira", "url": receiver.url("jira"), "email": "bot@example.com",
            "api_token": {"env": "CW_TEST_JIRA_TOKEN"}, "project": "FIN",
            "webhook_secret": SECRETS["jira_webhook"],
        },
        "servicenow": {
            "type": "servicenow", "instance_url": receiver.url("snow"), "username": "costwarden",
            "password": SECRETS["snow_password"],
        },
        "pagerduty": {
            "type": "pagerduty", "routing_key": {"env": "CW_TEST_PAGERDUTY"},
            "events_url": receiver.url("pd/v2/enqueue"), "min_severity": "info",
            "timeout_seconds": 0.3,
        },
        "webhook": {
            "type": "webhook", "url": receiver.url("hook"), "secret": SECRETS["webhook_secret"],
            "headers": {"Authorization": f"Bearer {SECRETS['webhook_header']}"},
        },
        "email": {
            "type": "email", "host": "127.0.0.1", "port": closed_port(), "starttls": False,
            "username": "mailer",
            "password": secret_file(tmp_path, "smtp", SECRETS["smtp_password"]),
            "sender": "costwarden@example.com", "recipients": ["finops@example.com"],
            "digest_only": False,
        },
    }
    for options in channels.values():
        options["burst"] = 500
        options["rate_per_second"] = 4
    return {
        "public_url": "https://costwarden.example.com",
        "link_secret": {"env": "CW_TEST_LINK_SECRET"},
        "channels": channels,
        "routes": [{"name": "everything", "channels": sorted(channels)}],
        "noise": {"digest_below": None},
        "delivery": {"backoff_base_seconds": 600, "max_attempts": 5},
    }


def script_failures(receiver: Receiver) -> None:
    unauthorized = Reply(401, {"Content-Type": "application/json"}, b'{"error": "unauthorized"}')
    receiver.always["/slack/"] = Reply(500, body=b"internal error")
    receiver.always["/slackapi/"] = Reply(
        200, {"Content-Type": "application/json"}, b'{"ok": false, "error": "invalid_auth"}'
    )
    receiver.always["/teams/"] = unauthorized
    receiver.always["/jira/"] = Reply(500, body=b"<html>Internal Server Error</html>")
    receiver.always["/snow/"] = unauthorized
    receiver.always["/pd/"] = Reply(202, body=b"{}", delay=2.0)
    receiver.always["/hook"] = Reply(500, body=b"receiver failed")


def costwarden(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI entry point with DEBUG JSON logs on stderr."""
    return subprocess.run(
        [sys.executable, "-m", "costwarden", "--config", str(config), "-vv", "--log-json", *args],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, **ENV},
    )


def in_process(config: Path, *args: str) -> str:
    """Run a CLI command in this process; return its output, or the message of its error."""
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    if isinstance(result.exception, CostwardenError):
        return result.stdout + str(result.exception)
    assert result.exit_code == 0, result.output
    return result.stdout + result.stderr


def find_secrets(text: str) -> list[str]:
    needles = {**SECRETS, "webhook_key": base64.b64encode(WEBHOOK_KEY).decode()}
    return sorted(name for name, value in needles.items() if value in text)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def test_no_secret_in_logs_rows_or_responses(
    tmp_path: Path, receiver: Receiver, secret_env: None, capfd: pytest.CaptureFixture[str]
) -> None:
    script_failures(receiver)
    database = tmp_path / "costwarden.db"
    simulator = SimulatorServer(
        SimulatorSettings(seed=DEMO_SEED, as_of=DEMO_AS_OF, rate_limit_enabled=False)
    )
    with simulator:
        config = tmp_path / "costwarden.yaml"
        settings_file = {
            "database_url": f"sqlite:///{database}",
            "palette": {"url": simulator.url, "api_key": simulator.api_key},
            "service": {
                "schedule": None,
                "api_keys": [{"name": "ops", "key": SECRETS["api_key"], "role": "admin"}],
            },
            "notify": notify_config(tmp_path, receiver),
        }
        SECRETS["palette_key"] = simulator.api_key
        config.write_text(yaml.safe_dump(settings_file), encoding="utf-8")
        outputs = [
            costwarden(config, "run", "--budgets", str(demo_budgets_file()),
                       "--as-of", DEMO_AS_OF.isoformat()),
        ]
    assert outputs[0].returncode in (0, 10), outputs[0].stderr[-2000:]

    outputs.append(costwarden(config, "deliveries", "send"))
    assert outputs[-1].returncode == 0, outputs[-1].stderr[-2000:]
    outputs.append(costwarden(config, "deliveries", "test", "teams"))
    assert outputs[-1].returncode == 7
    listed = in_process(config, "deliveries", "list", "--limit", "500", "--json")
    rows = json.loads(listed)["items"]
    one_per_status = {row["status"]: row["id"] for row in rows}
    texts = [listed]
    for row_id in one_per_status.values():
        texts.append(in_process(config, "deliveries", "show", row_id))
    texts.append(in_process(config, "config", "check"))
    assert "configuration is valid" in texts[-1]

    broken = yaml.safe_load(config.read_text(encoding="utf-8"))
    broken["notify"]["channels"]["pagerduty"]["routing_key"] = SECRETS["pagerduty"] + "x"
    broken["notify"]["channels"]["teams"]["workflow_url"] = "ftp://" + SECRETS["teams_sig"]
    broken_file = tmp_path / "broken.yaml"
    broken_file.write_text(yaml.safe_dump(broken), encoding="utf-8")
    texts.append(in_process(broken_file, "config", "check"))
    assert "routing key has 33 characters" in texts[-1]

    statuses = {row["status"] for row in rows}
    errors = " ".join(row["last_error"] or "" for row in rows)
    channels = {row["channel"] for row in rows}
    assert len(channels) == 8, channels
    assert "dead" in statuses
    assert "pending" in statuses
    assert "401" in errors
    assert "500" in errors
    assert "TimeoutException" in errors or "timed out" in errors.lower() or "Timeout" in errors
    assert all('"level": "debug"' in output.stderr for output in outputs[:2])

    api_text = service_responses(config, receiver, capfd)

    leaks = {}
    for index, output in enumerate(outputs):
        for where, text in (("stdout", output.stdout), ("stderr", output.stderr)):
            found = find_secrets(text)
            if found:
                leaks[f"command {index} {output.args[5:8]} {where}"] = found
    leaks["api responses and service logs"] = find_secrets(api_text)
    leaks["list, show and config check output"] = find_secrets("\n".join(texts))
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("costwarden.db*"))
    leaks["database file"] = find_secrets(stored.decode("utf-8", "replace"))
    assert {where: found for where, found in leaks.items() if found} == {}


def service_responses(config: Path, receiver: Receiver, capfd: pytest.CaptureFixture[str]) -> str:
    """Run the service on the same database with DEBUG JSON logs; return its responses and logs."""
    settings = load_settings(config)
    store = Store.open(settings.database_url)
    configure_logging("DEBUG", "json")
    texts = []
    try:
        with ServiceServer(settings, store) as service:
            headers = {"X-API-Key": SECRETS["api_key"]}
            with httpx.Client(base_url=service.url, headers=headers) as client:
                listed = client.get("/api/v1/deliveries", params={"limit": 500})
                texts.append(listed.text)
                items = listed.json()["items"]
                for item in items:
                    texts.append(client.get(f"/api/v1/deliveries/{item['id']}").text)
                dead = [item for item in items if item["channel"] == "teams"]
                before = len(receiver.received["/teams/invoke"])
                texts.append(client.post(f"/api/v1/deliveries/{dead[0]['id']}/retry").text)
                wait_for(lambda: len(receiver.received["/teams/invoke"]) > before, timeout=20)
                texts.append(client.get("/metrics").text)
    finally:
        store.close()
        configure_logging("WARNING", "console")
    captured = capfd.readouterr()
    texts += [captured.out, captured.err]
    assert "to teams is dead" in captured.err
    return "\n".join(texts)

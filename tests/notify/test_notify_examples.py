"""examples/notify.yaml loads through the real settings loader and routes as its comments describe.

The example names its secrets as ``{env: NAME}`` and ``{file: PATH}``. The tests set each
variable to a dummy value of the right shape, write each file under a temporary directory and
point the reference there, and change nothing else in the file.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from costwarden.config import NotifySettings, Settings, load_settings
from costwarden.notify.channels import build_channels
from costwarden.notify.email import EmailSettings
from costwarden.notify.jira import JiraSettings
from costwarden.notify.notice import Notice
from costwarden.notify.pagerduty import PagerDutySettings
from costwarden.notify.routing import Router

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "notify.yaml"
DOCS = [ROOT / "docs" / name for name in ("notifications.md", "api.md", "webhooks.md")]

DUMMY_BY_FIELD = {
    "webhook_url": "https://hooks.slack.com/services/T0000/B0000/dummy",
    "routing_key": "0123456789abcdef0123456789abcdef",
    "link_secret": "dummy-link-secret-0123456789abcdef",
    "secret": "whsec_" + base64.b64encode(b"dummy-signing-key-of-32-bytes!!!").decode(),
}
"""Dummy secret values for fields whose validators check the shape. Other fields get plain text."""


def _references(node: Any, field: str | None, found: list[tuple[str, str, dict[str, str]]]) -> None:
    """Collect every ``{env: NAME}`` and ``{file: PATH}`` mapping with the key it belongs to."""
    if isinstance(node, dict):
        if set(node) in ({"env"}, {"file"}):
            kind = next(iter(node))
            found.append((kind, field or "", node))
            return
        for key, value in node.items():
            _references(value, str(key), found)
    elif isinstance(node, list):
        for item in node:
            _references(item, field, found)


def _dummy(field: str) -> str:
    return DUMMY_BY_FIELD.get(field, f"dummy-{field}-value")


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, dict[str, str]]:
    """Load the example with dummy secrets, returning the settings and each secret's value."""
    for name in ("COSTWARDEN_CONFIG", "COSTWARDEN_NOTIFY_CHANNELS", "COSTWARDEN_NOTIFY_ROUTES"):
        monkeypatch.delenv(name, raising=False)
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    references: list[tuple[str, str, dict[str, str]]] = []
    _references(data, None, references)

    values: dict[str, str] = {}
    for index, (kind, field, reference) in enumerate(references):
        value = _dummy(field)
        if kind == "env":
            monkeypatch.setenv(reference["env"], value)
            values[reference["env"]] = value
        else:
            secret_file = tmp_path / "secrets" / f"{index}-{Path(reference['file']).name}"
            secret_file.parent.mkdir(exist_ok=True)
            secret_file.write_text(value + "\n", encoding="utf-8")
            values[reference["file"]] = value
            reference["file"] = str(secret_file)

    config = tmp_path / "notify.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_settings(config), values


def _notice(labels: dict[str, str], severity: str = "critical", kind: str = "budget") -> Notice:
    return Notice(
        alert_id="a1b2c3d4e5f60718",
        kind=kind,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        title="payments-prod-monthly is likely to exceed its budget",
        generated_at=datetime(2026, 11, 15, 10, tzinfo=UTC),
        budget="payments-prod-monthly",
        labels=labels,
    )


def test_example_names_every_secret_indirectly() -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    references: list[tuple[str, str, dict[str, str]]] = []
    _references(data, None, references)
    kinds = {kind for kind, _field, _reference in references}
    names = [ref["env"] for kind, _field, ref in references if kind == "env"]

    assert kinds == {"env", "file"}
    assert not [name for name in names if name.upper().startswith("COSTWARDEN_")]


def test_example_loads_every_channel(example: tuple[Settings, dict[str, str]]) -> None:
    settings, _values = example
    channels = build_channels(settings.notify)
    types = {channel.type for channel in channels.values()}

    assert types == {"slack", "jira", "pagerduty", "webhook", "email"}
    assert len(settings.notify.routes) == 2
    assert settings.notify.link_secret is not None
    assert settings.notify.public_url == "https://costwarden.example.com"


def test_example_secrets_resolve(example: tuple[Settings, dict[str, str]]) -> None:
    settings, values = example
    channels = build_channels(settings.notify)
    jira = channels["finops-jira"].settings
    pagerduty = channels["oncall-pagerduty"].settings
    email = channels["finops-email"].settings
    assert isinstance(jira, JiraSettings)
    assert isinstance(pagerduty, PagerDutySettings)
    assert isinstance(email, EmailSettings)
    assert email.password is not None

    assert jira.api_token.get_secret_value() == values["/run/secrets/jira-api-token"]
    assert pagerduty.routing_key.get_secret_value() == values["PAGERDUTY_ROUTING_KEY"]
    assert email.password.get_secret_value() == values["/run/secrets/smtp-password"]
    assert "dummy" not in repr(jira)


def test_example_quiet_hours_and_digest(example: tuple[Settings, dict[str, str]]) -> None:
    settings, _values = example
    channels = build_channels(settings.notify)
    quiet = channels["slack-payments"].settings.quiet_hours

    assert quiet is not None
    assert quiet.timezone == "Europe/Berlin"
    assert quiet.weekends is True
    assert settings.notify.noise.digest_below == "warning"
    assert settings.notify.noise.digest_timezone == "Europe/Berlin"
    assert channels["finance-webhook"].settings.digest is False
    assert channels["finops-email"].settings.digest is True


def test_example_routes_team_alert(example: tuple[Settings, dict[str, str]]) -> None:
    settings, _values = example
    router = Router(settings.notify)
    notice = _notice({"env": "production", "team": "payments"})

    channels = [channel for channel, _route in router.route(notice)]

    assert channels == [
        "slack-payments",
        "finops-jira",
        "oncall-pagerduty",
        "finance-webhook",
        "finops-email",
    ]


def test_example_routes_unknown_team(example: tuple[Settings, dict[str, str]]) -> None:
    settings, _values = example
    router = Router(settings.notify)
    notice = _notice({"env": "prod", "team": "search"})

    channels = [channel for channel, _route in router.route(notice)]

    assert channels == ["finops-jira", "oncall-pagerduty", "finance-webhook", "finops-email"]


def test_example_routes_recommendation(example: tuple[Settings, dict[str, str]]) -> None:
    settings, _values = example
    router = Router(settings.notify)
    notice = _notice({"env": "production", "team": "payments"}, "info", "recommendation")

    channels = [channel for channel, _route in router.route(notice)]

    assert channels == ["finance-webhook", "finops-email"]


def _setting_exists(path: list[str]) -> bool:
    """Return whether a dotted key below ``notify`` names a field of the settings models."""
    model: type[BaseModel] = NotifySettings
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return False
        # A key below a dict or list field matches nothing, because BaseModel has no fields.
        model = BaseModel
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            model = field.annotation
    return True


def test_docs_name_real_notify_settings() -> None:
    keys = set()
    for doc in DOCS:
        keys.update(re.findall(r"`notify\.([a-z_.]+)`", doc.read_text(encoding="utf-8")))

    unknown = sorted(key for key in keys if not _setting_exists(key.split(".")))

    assert keys
    assert unknown == []

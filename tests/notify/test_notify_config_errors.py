"""Weak or invalid notify settings fail at config time with the key, the value and a fix."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
from notify_samples import WEBHOOK

from costwarden.config import load_settings
from costwarden.errors import ConfigError

GOOD_SECRET = "0123456789abcdef0123456789abcdef"


def check(tmp_path: Path, notify: dict[str, Any]) -> str:
    """Load a config file with ``notify`` and return the error message."""
    import yaml

    path = tmp_path / "costwarden.yaml"
    path.write_text(yaml.safe_dump({"notify": notify}), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


def test_empty_link_secret(tmp_path: Path) -> None:
    message = check(tmp_path, {"link_secret": "", "public_url": "https://cw.example.com"})

    assert "notify.link_secret" in message
    assert "is empty" in message


def test_empty_link_secret_file(tmp_path: Path) -> None:
    empty = tmp_path / "link_secret"
    empty.write_text("\n", encoding="utf-8")

    message = check(tmp_path, {"link_secret": {"file": str(empty)},
                               "public_url": "https://cw.example.com"})

    assert "notify.link_secret" in message
    assert f"secret file {empty} is empty" in message


def test_short_link_secret(tmp_path: Path) -> None:
    message = check(tmp_path, {"link_secret": "abc", "public_url": "https://cw.example.com"})

    assert "notify.link_secret" in message
    assert "3 bytes long" in message
    assert "at least 32" in message
    assert "'abc'" not in message


def test_public_url_not_a_url(tmp_path: Path) -> None:
    message = check(tmp_path, {"public_url": "not a url"})

    assert "notify.public_url" in message
    assert "is not an http(s) URL" in message
    assert "(got 'not a url')" in message


def test_link_secret_without_public_url_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import yaml

    path = tmp_path / "costwarden.yaml"
    path.write_text(yaml.safe_dump({"notify": {"link_secret": GOOD_SECRET}}), encoding="utf-8")

    with caplog.at_level(logging.WARNING):
        settings = load_settings(path)

    assert settings.notify.link_secret is not None
    assert "notify.public_url is not" in caplog.text


def test_unbalanced_route_brace(tmp_path: Path) -> None:
    message = check(tmp_path, {
        "channels": {"slack-payments": {"type": "slack", "webhook_url": "https://hooks.x/1"}},
        "routes": [{"name": "teams", "channels": ["slack-{team"]}],
    })

    assert "notify.routes.0.channels" in message
    assert "'slack-{team'" in message
    assert "unbalanced" in message


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (base64.b64encode(b"k" * 32).decode(), "is not 'whsec_' followed by base64"),
        ("whsec_" + base64.b64encode(b"k" * 8).decode(), "holds 8 bytes; use 24 to 64"),
        ("whsec_" + base64.b64encode(b"k" * 80).decode(), "holds 80 bytes; use 24 to 64"),
    ],
    ids=["no-prefix", "short", "long"],
)
def test_weak_webhook_secret(tmp_path: Path, secret: str, expected: str) -> None:
    message = check(tmp_path, {"channels": {"hook": {**WEBHOOK, "secret": secret}}})

    assert "notify.channels.hook.secret" in message
    assert expected in message
    assert secret not in message


def test_channel_error_shows_value(tmp_path: Path) -> None:
    message = check(tmp_path, {"channels": {"hook": {**WEBHOOK, "rate_per_second": 0}}})

    assert "notify.channels.hook.rate_per_second: Input should be greater than 0 (got 0)" in message


def test_model_error_has_no_stray_dot(tmp_path: Path) -> None:
    jira = {"type": "jira", "url": "https://example.atlassian.net",
            "email": "a@example.com", "api_token": "token-1", "project": "FIN",
            "service_desk_id": "4"}
    message = check(tmp_path, {"channels": {"j": jira}})

    assert "notify.channels.j: service_desk_id and request_type_id go together" in message
    assert "notify.channels.j." not in message
    assert "Value error," not in message


def test_unknown_type_names_channel(tmp_path: Path) -> None:
    message = check(tmp_path, {"channels": {"alerts": {"type": "slak"}}})

    assert "notify.channels.alerts.type: unknown channel type 'slak'" in message
    assert "did you mean 'slack'?" in message


def test_empty_file_for_webhook_url(tmp_path: Path) -> None:
    empty = tmp_path / "url"
    empty.write_text("", encoding="utf-8")

    message = check(tmp_path, {"channels": {"s": {"type": "slack",
                                                  "webhook_url": {"file": str(empty)}}}})

    assert "notify.channels.s.webhook_url" in message
    assert f"secret file {empty} is empty" in message
    assert "https://" not in message


def test_typo_key_did_you_mean(tmp_path: Path) -> None:
    message = check(tmp_path, {"channels": {"hook": {**WEBHOOK, "rate_per_secnd": 2}}})

    assert "notify.channels.hook.rate_per_secnd: unknown setting" in message
    assert "did you mean 'rate_per_second'?" in message


def test_email_ssl_alone_turns_starttls_off(tmp_path: Path) -> None:
    import yaml

    email = {"type": "email", "host": "smtp.example.com", "port": 465, "ssl": True,
             "sender": "cw@example.com", "recipients": ["finops@example.com"]}
    path = tmp_path / "costwarden.yaml"
    path.write_text(yaml.safe_dump({"notify": {"channels": {"mail": email}}}), encoding="utf-8")

    from costwarden.notify.channels import build_channels

    channel = build_channels(load_settings(path).notify)["mail"]

    assert channel.settings.ssl is True
    assert channel.settings.starttls is False
    both = check(tmp_path, {"channels": {"mail": {**email, "starttls": True}}})
    assert "ssl and starttls exclude each other" in both


def test_snooze_hours_bounded(tmp_path: Path) -> None:
    message = check(tmp_path, {"noise": {"snooze_hours": 99999}})

    assert "notify.noise.snooze_hours" in message
    assert "(got 99999)" in message

"""Log configuration: JSON lines keep the traceback of a logged exception."""

from __future__ import annotations

import json
import logging

import pytest

from costwarden.logging_setup import configure_logging


def test_json_log_renders_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    try:
        try:
            {}["missing"]  # noqa: B018
        except KeyError:
            logging.getLogger("costwarden.test").exception("lookup failed for %s", "missing")
        record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        configure_logging()
    assert record["event"] == "lookup failed for missing"
    assert "exc_info" not in record
    assert record["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in record["exception"]

"""Helpers that write calendar files of scheduled jobs into the test's temporary folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_ics(tmp_path: Path) -> Callable[[str], Path]:
    """Return a function that wraps VEVENT text in a VCALENDAR and writes it to a .ics file.

    Leading spaces are stripped from every line, so no line becomes a folded continuation.
    """

    def write(events: str, name: str = "jobs.ics") -> Path:
        body = "\n".join(line.strip() for line in events.strip().splitlines() if line.strip())
        head = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//costwarden tests//EN"
        text = f"{head}\n{body}\nEND:VCALENDAR\n"
        path = tmp_path / name
        path.write_text(text.replace("\n", "\r\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[str], Path]:
    """Return a function that writes dedented CSV text to a .csv file."""

    def write(text: str, name: str = "jobs.csv") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write

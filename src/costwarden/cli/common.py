"""Shared CLI pieces: the global settings flags, the consoles, and JSON output."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from costwarden.config import Settings, load_settings
from costwarden.logging_setup import configure_logging

# Rich falls back to 80 columns when output is not a terminal, which folds the budget table.
# Files and CI logs get 120 columns unless COLUMNS is set.
_PIPE_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120

stdout = Console(width=_PIPE_WIDTH)
stderr = Console(stderr=True)


@dataclass
class CliState:
    """Global flags, turned into settings when a command needs them.

    ``log_level`` and ``log_format`` hold the logging flags, None when not given: loading the
    settings applies their ``log_level`` and ``log_format`` unless a flag sets them.
    """

    config_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    log_level: str | None = None
    log_format: str | None = None

    def settings(self, **command_overrides: Any) -> Settings:
        loaded = load_settings(self.config_file, **{**self.overrides, **command_overrides})
        configure_logging(self.log_level or loaded.log_level, self.log_format or loaded.log_format)
        return loaded


def state(ctx: typer.Context) -> CliState:
    found = ctx.find_object(CliState)
    if found is None:
        found = CliState()
        ctx.obj = found
    return found


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout, bypassing Rich so that pipes get plain text."""
    typer.echo(json.dumps(data, indent=2, default=str))

"""Log configuration, done once by the entry point. Library modules only call getLogger."""

from __future__ import annotations

import logging
import sys

import structlog
from rich.console import Console
from rich.logging import RichHandler


def json_formatter() -> logging.Formatter:
    """Return the formatter of JSON log lines, with the context bound in structlog.contextvars."""
    return structlog.stdlib.ProcessorFormatter(
        processor=structlog.processors.JSONRenderer(),
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ExtraAdder(),
            # The traceback of logger.exception as text, not the repr of the exc_info tuple.
            structlog.processors.format_exc_info,
        ],
    )


def configure_logging(level: str = "WARNING", fmt: str = "console") -> None:
    """Send logs to stderr, as Rich console lines or as JSON objects, one per line."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)

    if fmt == "json":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(json_formatter())
    else:
        handler = RichHandler(
            console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False
        )

    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("costwarden").setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)

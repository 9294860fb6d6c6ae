"""Context of the service's log lines: the run, its trigger and tenant.

The values are bound with ``structlog.contextvars`` and the JSON formatter of
``logging_setup.configure_logging`` merges them into every stdlib log record, so library modules
keep ``logging.getLogger(__name__)`` and still log with the run id. The pipeline binds the
budget being evaluated the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog


@contextmanager
def run_context(run_id: str, trigger: str, tenant: str) -> Iterator[None]:
    """Bind the run id, trigger and tenant to every log line written inside the block."""
    with structlog.contextvars.bound_contextvars(run_id=run_id, trigger=trigger, tenant=tenant):
        yield

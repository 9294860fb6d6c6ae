"""The per-tenant pass lease in ``pass_leases``: at most one holder runs a pass of a tenant.

A holder takes the lease with an insert, or takes it over with a conditional update when the
lease has expired. Both statements are atomic on SQLite and PostgreSQL, so two processes that
race for one tenant never both succeed. The holder renews the lease while its pass runs and
deletes it at the end; a holder that dies stops renewing, and the lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from costwarden.store import Store
from costwarden.store.tables import PassLease

logger = logging.getLogger(__name__)


def new_holder() -> str:
    """Return a holder id unique to this process: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_gone(holder: str, me: str) -> bool:
    """Return whether a holder on this host no longer runs; holders elsewhere count as alive.

    A holder with this host's name whose process id is not running, or is this process under
    another holder id (a restarted container often gets the same process id), is gone.
    """
    host, _, rest = holder.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or holder == me:
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True, slots=True)
class Acquired:
    """A lease this holder now has, with the run of the holder it took the lease from."""

    taken_over_from: str | None = None
    previous_run_id: str | None = None
    reason: str | None = None
    """Reason the previous holder lost the lease, worded for the abandoned run's error."""


class PassLeases:
    """Acquire, renew and release the pass lease of one tenant for one holder."""

    def __init__(self, store: Store, tenant: str, holder: str, lease_seconds: int) -> None:
        self.store = store
        self.tenant = tenant
        self.holder = holder
        self.duration = timedelta(seconds=lease_seconds)

    def acquire(self, run_id: str) -> Acquired | None:
        """Take the lease for ``run_id``; return None while another live holder has it."""
        now = datetime.now(UTC)
        try:
            with self.store.transaction() as session:
                session.add(
                    PassLease(
                        tenant=self.tenant,
                        holder=self.holder,
                        run_id=run_id,
                        acquired_at=now,
                        renewed_at=now,
                        expires_at=now + self.duration,
                    )
                )
            return Acquired()
        except IntegrityError:
            return self._take_over(run_id, now)

    def _take_over(self, run_id: str, now: datetime) -> Acquired | None:
        """Take the lease over when it has expired or its holder on this host is gone."""
        with self.store.transaction() as session:
            current = session.scalar(select(PassLease).where(PassLease.tenant == self.tenant))
            if current is None:
                return None
            if holder_is_gone(current.holder, self.holder):
                reason = f"its holder {current.holder} was found stopped"
            elif current.expires_at <= now:
                reason = f"its holder {current.holder} let the lease expire"
            else:
                return None
            old_holder, old_run = current.holder, current.run_id
            result = session.execute(
                update(PassLease)
                .where(
                    PassLease.tenant == self.tenant,
                    PassLease.holder == old_holder,
                    PassLease.renewed_at == current.renewed_at,
                )
                .values(
                    holder=self.holder,
                    run_id=run_id,
                    acquired_at=now,
                    renewed_at=now,
                    expires_at=now + self.duration,
                )
                .execution_options(synchronize_session=False)
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        logger.warning(
            "took over the pass lease of tenant %s from %s (run %s): %s",
            self.tenant, old_holder, old_run, reason,
        )
        return Acquired(old_holder, old_run, reason)

    def renew(self) -> bool:
        """Extend the lease; return False when this holder no longer has it."""
        now = datetime.now(UTC)
        with self.store.transaction() as session:
            renewed = session.execute(
                update(PassLease)
                .where(PassLease.tenant == self.tenant, PassLease.holder == self.holder)
                .values(renewed_at=now, expires_at=now + self.duration)
                .execution_options(synchronize_session=False)
            )
        return renewed.rowcount == 1  # type: ignore[attr-defined]

    def release(self) -> None:
        """Delete the lease if this holder still has it."""
        with self.store.transaction() as session:
            session.execute(
                delete(PassLease)
                .where(PassLease.tenant == self.tenant, PassLease.holder == self.holder)
                .execution_options(synchronize_session=False)
            )

    def current(self) -> PassLease | None:
        with self.store.transaction() as session:
            return session.scalar(select(PassLease).where(PassLease.tenant == self.tenant))

"""Passes of the main job inside the service: queued in ``runs``, run one at a time per tenant.

``PassRunner.request`` writes a ``queued`` run row and wakes a worker thread. The worker takes
the tenant's lease in ``pass_leases`` before it starts a queued run, so two threads, processes
or replicas on one database never run passes of the same tenant at once. Statuses go
queued, running, then succeeded, failed or abandoned.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from costwarden.config import Settings
from costwarden.errors import StoreError
from costwarden.pipeline import RunResult, run_pass
from costwarden.service import telemetry
from costwarden.service.gauges import refresh_budget_gauges
from costwarden.service.lease import PassLeases, holder_is_gone, new_holder
from costwarden.service.logs import run_context
from costwarden.service.state import RefreshScope
from costwarden.store import Store
from costwarden.store.budgets import stored_budgets
from costwarden.store.tables import PassLease, Run

logger = logging.getLogger(__name__)

PassFunction = Callable[..., RunResult]
POLL_SECONDS = 5.0
"""How often an idle worker looks for runs that other replicas queued."""
RUN_ID_NAMESPACE = uuid.UUID("5f0c6f0e-4a3b-5d62-9a51-2f6b8c1e7d40")
"""Namespace of the deterministic run ids of scheduled passes (uuid5 of tenant and fire time)."""


class PassRunner:
    """Runs queued passes of one tenant on a worker thread, under the tenant's lease.

    ``holder`` names this runner in ``pass_leases`` (default: host, process id and a random
    part). ``pass_function`` replaces ``pipeline.run_pass`` (tests pass a slow or failing one).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        holder: str | None = None,
        *,
        pass_function: PassFunction = run_pass,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.settings = settings
        self.store = store
        self.tenant = settings.service.tenant
        self.holder = holder or new_holder()
        self.leases = PassLeases(store, self.tenant, self.holder, settings.service.lease_seconds)
        self._pass = pass_function
        self._poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: str | None = None

    @property
    def current_run(self) -> str | None:
        """Id of the run this runner is executing, or None when idle."""
        return self._current

    def request(
        self, trigger: str, scope: RefreshScope | None = None, *, key: str | None = None
    ) -> str:
        """Queue a pass and return its run id, joining a queued pass of the tenant if there is one.

        A joined run keeps its trigger; its scope widens to cover the request (no scope means
        the whole fleet). A ``start`` request also joins a running pass, so replicas starting
        together run one pass. ``key`` (the schedule's fire time) makes the run id
        deterministic: a request whose run already exists, in any status, returns that run.
        The database allows one queued run per tenant; a request that loses the race for it
        joins the winner's run.
        """
        # NOTE: a keyed request that joins a queued run of another id leaves no run under its
        # key, so a replica whose tick comes after that run started queues a second pass.
        run_id = self._keyed_id(key) if key is not None else str(uuid.uuid4())
        for _ in range(3):
            try:
                found = self._join_or_queue(trigger, scope, run_id, keyed=key is not None)
            except IntegrityError:
                logger.debug("another request queued a run of tenant %s first", self.tenant)
                continue
            self._wake.set()
            return found
        raise StoreError(
            f"could not queue a {trigger} pass for tenant {self.tenant}: the queued run kept "
            "changing under concurrent requests; retry the request"
        )

    def _keyed_id(self, key: str) -> str:
        return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{self.tenant}/{key}"))

    def _join_or_queue(
        self, trigger: str, scope: RefreshScope | None, run_id: str, *, keyed: bool
    ) -> str:
        """Join the tenant's queued run (or running one, for ``start``), else add ``run_id``."""
        with self.store.transaction() as session:
            if keyed and session.get(Run, run_id) is not None:
                logger.info("%s request found run %s", trigger, run_id)
                return run_id

            statuses = ("queued", "running") if trigger == "start" else ("queued",)
            # The row lock (PostgreSQL) makes a worker's claim of this run wait for the join.
            joined = session.scalar(
                select(Run)
                .where(Run.tenant == self.tenant, Run.status.in_(statuses))
                .order_by(Run.status.desc(), Run.started_at)
                .limit(1)
                .with_for_update()
            )
            if joined is not None:
                if joined.status == "queued":
                    joined.scope = _merge_scopes(joined.scope, scope)
                logger.info("%s request joined %s run %s", trigger, joined.status, joined.id)
                return joined.id

            now = datetime.now(UTC)
            session.add(
                Run(
                    id=run_id, as_of=now, started_at=now, status="queued", trigger=trigger,
                    tenant=self.tenant, scope=scope.as_json() if scope is not None else None,
                )
            )
            session.flush()
        logger.info("queued %s run %s for tenant %s", trigger, run_id, self.tenant)
        return run_id

    def start(self) -> None:
        """Start the worker thread; it runs queued passes until ``stop``."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._work, name=f"pass-runner-{self.tenant}", daemon=True
        )
        self._thread.start()

    def stop(self, grace_seconds: float) -> bool:
        """Stop taking runs and wait up to ``grace_seconds`` for the running pass.

        Return True when the worker stopped in time. Otherwise the running pass is marked
        ``abandoned`` and the lease released: each stage of a pass commits its own transaction,
        so what it wrote stays consistent, and the next pass repeats the rest.

        NOTE: the abandoned pass's thread keeps running until the process exits, so a replica
        that takes the released lease at once may overlap with it for that short time.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(grace_seconds)
        if not self._thread.is_alive():
            self._thread = None
            return True

        run_id = self._current
        logger.warning(
            "pass %s still running after %.0f s of shutdown grace; marking it abandoned",
            run_id, grace_seconds,
        )
        if run_id is not None:
            self._abandon([run_id], "the service shut down during the pass")
        self.leases.release()
        return False

    def recover(self) -> list[str]:
        """Mark running runs of the tenant whose lease holder is gone as ``abandoned``.

        A process killed during a pass leaves its run ``running`` and its lease in place. The
        lease then belongs to no live holder once it expires, or at once when its holder was
        a process on this host that no longer runs. Queued runs stay queued: a worker will run
        them. Return the ids of the runs marked.
        """
        lease = self.leases.current()
        live_run = None
        if lease is not None and not self._lease_is_dead(lease):
            live_run = lease.run_id
        with self.store.transaction() as session:
            running = session.scalars(
                select(Run.id).where(Run.tenant == self.tenant, Run.status == "running")
            ).all()
        stale = [run_id for run_id in running if run_id != live_run]
        if stale:
            self._abandon(stale, "the process running the pass stopped")
        if lease is not None and live_run is None:
            self._delete_dead_lease(lease)
        return stale

    def _lease_is_dead(self, lease: PassLease) -> bool:
        return lease.expires_at <= datetime.now(UTC) or holder_is_gone(lease.holder, self.holder)

    def _delete_dead_lease(self, lease: PassLease) -> None:
        with self.store.transaction() as session:
            session.execute(
                delete(PassLease).where(
                    PassLease.tenant == lease.tenant,
                    PassLease.holder == lease.holder,
                    PassLease.renewed_at == lease.renewed_at,
                )
            )
        logger.warning("removed the pass lease of stopped holder %s", lease.holder)

    def _abandon(self, run_ids: list[str], reason: str) -> None:
        now = datetime.now(UTC)
        with self.store.transaction() as session:
            for run_id in run_ids:
                changed = session.execute(
                    update(Run)
                    .where(Run.id == run_id, Run.status.in_(("running", "queued")))
                    .values(status="abandoned", finished_at=now, error=reason)
                    .execution_options(synchronize_session=False)
                )
                if changed.rowcount:  # type: ignore[attr-defined]
                    trigger = session.scalar(select(Run.trigger).where(Run.id == run_id))
                    telemetry.PASSES.labels(trigger=trigger or "unknown", status="abandoned").inc()
                    logger.warning("run %s marked abandoned: %s", run_id, reason)

    def _work(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                ran = self._run_next()
                failures = 0
            except Exception as exc:
                # The database may be down for a while: log the first failure and every 60th.
                if failures % 60 == 0:
                    logger.error(
                        "pass runner of tenant %s failed (%d times in a row); retrying every "
                        "%.0f s: %s: %s",
                        self.tenant, failures + 1, self._poll_seconds, type(exc).__name__, exc,
                    )
                failures += 1
                ran = False
            if not ran:
                self._wake.wait(self._poll_seconds)

    def _run_next(self) -> bool:
        """Run the oldest queued run under the lease; return False when there was nothing to do."""
        run = self._next_queued()
        if run is None or self._stopping.is_set():
            return False
        acquired = self.leases.acquire(run.id)
        if acquired is None:
            logger.debug("tenant %s lease held elsewhere; run %s waits", self.tenant, run.id)
            return False
        if acquired.previous_run_id is not None:
            reason = acquired.reason or "its holder lost the lease"
            self._abandon([acquired.previous_run_id], reason)

        try:
            claimed = self._claim(run.id)
            if claimed is not None:
                self._execute(claimed)
        finally:
            self.leases.release()
        return True

    def _next_queued(self) -> Run | None:
        with self.store.transaction() as session:
            return session.scalar(
                select(Run)
                .where(Run.tenant == self.tenant, Run.status == "queued")
                .order_by(Run.started_at)
                .limit(1)
            )

    def _claim(self, run_id: str) -> Run | None:
        """Mark the run as running and return it as stored, with the scope of joined requests.

        Return None when another worker has taken the run meanwhile.
        """
        with self.store.transaction() as session:
            claimed = session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == "queued")
                .values(status="running", started_at=datetime.now(UTC))
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return session.scalar(
                select(Run).where(Run.id == run_id).execution_options(populate_existing=True)
            )

    def _execute(self, run: Run) -> None:
        """Run one pass with the lease renewed in the background, and record its metrics."""
        self._current = run.id
        scope = _scope_from_json(run.scope)
        renewer = _Renewer(self.leases, self.settings.service.lease_seconds / 3)
        telemetry.PASS_RUNNING.set(1)
        clock = time.monotonic()
        status = "failed"
        with run_context(run.id, run.trigger, self.tenant), renewer:
            try:
                self._run_pass(run, scope)
                status = "succeeded"
            except Exception as exc:
                # run_pass records its own failures; this covers errors before it starts.
                self._fail(run.id, exc)
            finally:
                self._current = None
                telemetry.PASS_RUNNING.set(0)
        self._record_metrics(run.trigger, status, time.monotonic() - clock)
        if status == "succeeded":
            self._refresh_gauges()

    def _fail(self, run_id: str, exc: Exception) -> None:
        with self.store.transaction() as session:
            changed = session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == "running")
                .values(
                    status="failed",
                    finished_at=datetime.now(UTC),
                    error=f"{type(exc).__name__}: {exc}",
                )
                .execution_options(synchronize_session=False)
            )
        if changed.rowcount:  # type: ignore[attr-defined]
            logger.error("pass %s failed before it started: %s: %s",
                         run_id, type(exc).__name__, exc)

    def _refresh_gauges(self) -> None:
        try:
            refresh_budget_gauges(self.store)
        except Exception as exc:
            logger.error("updating the budget gauges failed: %s: %s", type(exc).__name__, exc)

    def _run_pass(self, run: Run, scope: RefreshScope | None) -> RunResult:
        with self.store.transaction() as session:
            budgets = stored_budgets(session)
        logger.info("pass %s started: %s, %d budgets", run.id, run.trigger, len(budgets))
        return self._pass(
            self.store, self.settings, budgets, datetime.now(UTC),
            run_id=run.id, trigger=run.trigger, tenant=self.tenant, scope=scope,
        )

    def _record_metrics(self, trigger: str, status: str, seconds: float) -> None:
        telemetry.PASSES.labels(trigger=trigger, status=status).inc()
        if status == "succeeded":
            telemetry.PASS_DURATION.labels(trigger=trigger).observe(seconds)
            telemetry.LAST_SUCCESS.set(time.time())


class _Renewer:
    """Renews a lease every ``interval`` seconds on a thread while its block runs."""

    def __init__(self, leases: PassLeases, interval: float) -> None:
        self.leases = leases
        self.interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pass-lease-renewer", daemon=True)

    def __enter__(self) -> _Renewer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            try:
                if not self.leases.renew():
                    logger.error(
                        "lost the pass lease of tenant %s; another holder may start a pass",
                        self.leases.tenant,
                    )
            except Exception:
                logger.exception("renewing the pass lease of tenant %s failed", self.leases.tenant)


def _merge_scopes(
    stored: dict[str, Any] | None, requested: RefreshScope | None
) -> dict[str, Any] | None:
    """Return the scope that covers both a queued run's scope and a new request's scope."""
    if stored is None or requested is None:
        return None
    if not (stored.get("cluster_uids") or stored.get("cluster_names")):
        return None
    if not (requested.cluster_uids or requested.cluster_names):
        return None
    return {
        "cluster_uids": sorted(set(stored.get("cluster_uids", [])) | set(requested.cluster_uids)),
        "cluster_names": sorted(
            set(stored.get("cluster_names", [])) | set(requested.cluster_names)
        ),
        "days": max(int(stored.get("days", requested.days)), requested.days),
    }


def _scope_from_json(data: dict[str, Any] | None) -> RefreshScope | None:
    if data is None:
        return None
    return RefreshScope(
        cluster_uids=tuple(data.get("cluster_uids", ())),
        cluster_names=tuple(data.get("cluster_names", ())),
        days=int(data.get("days", 3)),
    )

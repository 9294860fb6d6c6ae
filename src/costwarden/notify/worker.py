"""The delivery worker: claims due outbox rows, sends them and records the outcome.

Each scan claims due rows under a lease (``claimed_by``, ``claimed_until``), so two processes
never send the same row while the lease is valid. Any worker takes a row whose lease expired. The
claimed rows are grouped by channel, and channels are sent concurrently, each in creation order
through its own HTTP client and token bucket. A retryable failure pauses its channel for the
retry delay, so one failing channel neither slows the others nor is hammered by its own queue.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from costwarden.audit.hooks import record_delivery
from costwarden.config import NotifySettings
from costwarden.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify.channels import redact, secret_values
from costwarden.notify.notice import Notice
from costwarden.notify.pacing import TokenBucket, quiet_until, retry_delay
from costwarden.notify.registry import ActionLinks, Channel, Delivery, SendResult
from costwarden.notify.responses import store_response
from costwarden.service.telemetry import DEAD_LETTERS, DELIVERIES, OUTBOX_ROWS
from costwarden.store import Store
from costwarden.store.tables import NotificationRecord, OutboxRecord

logger = logging.getLogger(__name__)

CLAIM_HORIZON_SECONDS = 30.0
"""A scan claims at most the rows a channel's rate limit lets through in this many seconds."""
LEASE_SECONDS = 120.0
"""Lease of a claim beyond the claim horizon and the channel's request timeout."""
LEASE_MARGIN_SECONDS = 5.0
GAUGE_SECONDS = 15.0
"""Seconds between refreshes of the outbox gauges."""
STOP_SECONDS = 30.0
FLUSH_ROWS = 100
FLUSH_SECONDS = 1.0
"""Sent rows are recorded in batches of at most FLUSH_ROWS rows or FLUSH_SECONDS seconds."""


@dataclass(slots=True)
class WorkerReport:
    """Counts of the rows that one or more worker scans handled.

    ``deferred`` counts rows put back for later without an attempt: quiet hours, a paused
    channel, a claim lease running out or the worker stopping. ``skipped`` counts due rows,
    by channel, of channels that are disabled or no longer configured; they stay pending.
    """

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    digests: int = 0
    polled: int = 0
    responses: int = 0

    def add(self, other: WorkerReport) -> None:
        """Add the counts of ``other``; ``skipped`` keeps the latest scan's, when it has any."""
        for name in ("claimed", "sent", "retried", "dead", "deferred", "digests", "polled",
                     "responses"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.claimed or other.skipped:
            self.skipped = dict(other.skipped)


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """The fields of a claimed outbox row that sending needs."""

    id: str
    channel: str
    alert_id: str | None
    event: str
    notices: list[dict[str, Any]]
    created_at: datetime
    attempts: int

    @property
    def critical(self) -> bool:
        return any(notice.get("severity") == "critical" for notice in self.notices)


@dataclass(frozen=True, slots=True)
class SentRow:
    """A row the channel accepted, waiting to be recorded as sent."""

    row: ClaimedRow
    result: SendResult
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class Claim:
    """Rows claimed by one scan under one lease token."""

    token: str
    lease_end: datetime
    rows: list[ClaimedRow]
    refs: dict[tuple[str, str], str]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeliveryWorker:
    """Sends outbox rows to the configured channels.

    ``clock`` returns the current UTC time and ``sleep`` waits a number of seconds; tests inject
    both. The default ``sleep`` returns early when the worker stops. ``audit_tenant`` is the
    tenant whose audit trail records each sent and dead delivery.
    """

    def __init__(
        self,
        store: Store,
        settings: NotifySettings,
        channels: dict[str, Channel],
        *,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        worker_id: str | None = None,
        audit_tenant: str = "default",
    ) -> None:
        self.store = store
        self.audit_tenant = audit_tenant
        self.settings = settings
        self.delivery = settings.delivery
        self.channels = channels
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._secrets = secret_values(settings, channels)
        self._clients: dict[str, httpx.Client] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._paused: dict[str, datetime] = {}
        self._last_poll: datetime | None = None
        self._last_gauges: datetime | None = None
        self._reported_skips: set[str] = set()
        self._thread: threading.Thread | None = None

    # -- one scan -------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> WorkerReport:
        """Collect digests, poll approvals, then claim the due rows and send them."""
        now = now or self.clock()
        report = WorkerReport()
        self._expire(now, report)
        self._collect_digests(now, report)
        self._poll_approvals(now, report)
        report.skipped = self._count_skipped(now)

        claim = self._claim(now)
        report.claimed = len(claim.rows)
        groups: dict[str, list[ClaimedRow]] = defaultdict(list)
        for row in claim.rows:
            groups[row.channel].append(row)

        if groups:
            workers = min(self.delivery.concurrency, len(groups))
            with ThreadPoolExecutor(workers, thread_name_prefix="costwarden-send") as pool:
                futures = [
                    pool.submit(self._send_channel, name, rows, claim)
                    for name, rows in groups.items()
                ]
                for future in futures:
                    report.add(future.result())
        self._refresh_gauges(now)
        return report

    def drain(self, progress: Callable[[WorkerReport], None] | None = None) -> WorkerReport:
        """Run scans until none claims a row: every due row was sent, retried or deferred.

        Rows whose retry time lies in the future are left for a later run.
        """
        total = WorkerReport()
        while not self._stopping.is_set():
            report = self.run_once()
            total.add(report)
            if progress is not None:
                progress(total)
            if report.claimed == 0:
                break
        return total

    # -- claiming -------------------------------------------------------------------------------

    def sendable_channels(self) -> list[str]:
        """Names of the configured, enabled channels."""
        return sorted(name for name, channel in self.channels.items() if channel.settings.enabled)

    def _claim(self, now: datetime) -> Claim:
        names = [name for name in self.sendable_channels() if not self._is_paused(name, now)]
        token = f"{self.worker_id}/{uuid.uuid4().hex[:12]}"
        timeout = max((self.channels[name].settings.timeout_seconds for name in names), default=0)
        lease_end = now + timedelta(seconds=CLAIM_HORIZON_SECONDS + LEASE_SECONDS + timeout)
        if not names:
            return Claim(token, lease_end, [], {})

        with self.store.transaction() as session:
            _claim_rows(session, names, self._claim_caps(names), now, token, lease_end,
                         self.delivery.batch_size)
            records = session.scalars(
                select(OutboxRecord).where(OutboxRecord.claimed_by == token)
            ).all()
            rows = [_claimed_row(record) for record in records]
            refs = _external_refs(session, rows)
        if rows:
            logger.debug("claimed %d outbox rows as %s", len(rows), token)
        return Claim(token, lease_end, rows, refs)

    def _claim_caps(self, names: Iterable[str]) -> dict[str, int]:
        caps = {}
        for name in names:
            settings = self.channels[name].settings
            paced = math.ceil(settings.rate_per_second * CLAIM_HORIZON_SECONDS)
            caps[name] = max(settings.burst, paced)
        return caps

    def _is_paused(self, name: str, now: datetime) -> bool:
        until = self._paused.get(name)
        return until is not None and until > now

    def _count_skipped(self, now: datetime) -> dict[str, int]:
        sendable = self.sendable_channels()
        with self.store.transaction() as session:
            query = (
                select(OutboxRecord.channel, func.count())
                .where(OutboxRecord.status == "pending", OutboxRecord.next_attempt_at <= now)
                .group_by(OutboxRecord.channel)
            )
            if sendable:
                query = query.where(OutboxRecord.channel.not_in(sendable))
            skipped = {name: int(count) for name, count in session.execute(query).all()}
        for name in sorted(set(skipped) - self._reported_skips):
            reason = "is disabled" if name in self.channels else "is not configured"
            logger.warning(
                "channel %s %s; its %d due outbox rows stay pending", name, reason, skipped[name]
            )
        self._reported_skips = set(skipped)
        return skipped

    # -- sending one channel --------------------------------------------------------------------

    def _send_channel(self, name: str, rows: list[ClaimedRow], claim: Claim) -> WorkerReport:
        """Send one channel's claimed rows in creation order, within its rate limit."""
        channel = self.channels[name]
        report = WorkerReport()
        refs = {key: value for key, value in claim.refs.items() if key[1] == name}
        queue = self._hold_for_quiet_hours(channel, rows, claim, report)

        sent: list[SentRow] = []
        flushed = time.monotonic()
        try:
            for index, row in enumerate(queue):
                if not self._may_send(channel, queue, index, claim, report):
                    break
                result = self._send_row(channel, row, claim.token, refs, report)
                if result is not None:
                    sent.append(SentRow(row, result, self.clock()))
                if len(sent) >= FLUSH_ROWS or time.monotonic() - flushed >= FLUSH_SECONDS:
                    self._record_sent(sent, claim.token, report)
                    sent, flushed = [], time.monotonic()
        finally:
            self._record_sent(sent, claim.token, report)
        return report

    def _hold_for_quiet_hours(
        self, channel: Channel, rows: list[ClaimedRow], claim: Claim, report: WorkerReport
    ) -> list[ClaimedRow]:
        """Put back the rows that quiet hours hold; return the others in creation order."""
        ordered = sorted(rows, key=lambda row: (row.created_at, row.id))
        quiet_end = quiet_until(channel.settings.quiet_hours, self.clock())
        if quiet_end is None:
            return ordered
        on_hold = [row for row in ordered if _held(row, channel)]
        self._release(on_hold, claim.token, quiet_end, "quiet hours", report)
        return [row for row in ordered if not _held(row, channel)]

    def _may_send(
        self, channel: Channel, queue: list[ClaimedRow], index: int, claim: Claim,
        report: WorkerReport,
    ) -> bool:
        """Check the stop flag, the channel's pause and its rate limit before ``queue[index]``.

        Returns ``False`` after putting ``queue[index:]`` back when the row may not go now.
        """
        if self._stopping.is_set():
            self._release(queue[index:], claim.token, None, "worker stopping", report)
            return False
        paused_until = self._paused.get(channel.name)
        if paused_until is not None and paused_until > self.clock():
            self._release(queue[index:], claim.token, paused_until, "channel paused", report)
            return False
        return self._wait_for_token(channel, queue, index, claim, report)

    def _wait_for_token(
        self, channel: Channel, queue: list[ClaimedRow], index: int, claim: Claim,
        report: WorkerReport,
    ) -> bool:
        """Wait for the channel's rate limit; put the rows back when the lease would run out."""
        bucket = self._bucket(channel)
        now = self.clock()
        wait = bucket.reserve(now.timestamp())
        if wait <= 0:
            return True
        due = now + timedelta(seconds=wait)
        latest = claim.lease_end - timedelta(
            seconds=channel.settings.timeout_seconds + LEASE_MARGIN_SECONDS
        )
        if due > latest:
            bucket.refund()
            self._release(queue[index:], claim.token, due, "claim lease ends", report)
            return False
        self._sleep(wait)
        if self._stopping.is_set():
            bucket.refund()
            self._release(queue[index:], claim.token, None, "worker stopping", report)
            return False
        return True

    def _send_row(
        self, channel: Channel, row: ClaimedRow, token: str,
        refs: dict[tuple[str, str], str], report: WorkerReport,
    ) -> SendResult | None:
        """Send one row; return the result, or record the failure and return ``None``."""
        try:
            delivery = self._delivery(channel, row, refs)
        except (KeyError, TypeError, ValueError) as exc:
            error = PermanentDeliveryError(
                f"channel {channel.name!r}: outbox row {row.id} contains an invalid notice "
                f"({exc.__class__.__name__})",
                channel=channel.name,
            )
            self._record_failure(row, token, error, report)
            return None

        try:
            result = channel.send(delivery, self._client(channel))
        except DeliveryError as exc:
            self._record_failure(row, token, exc, report)
            return None
        except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the other rows
            logger.error(
                "channel %s failed on outbox row %s with %s", channel.name, row.id,
                exc.__class__.__name__,
            )
            error = RetryableDeliveryError(
                f"channel {channel.name!r}: unexpected {exc.__class__.__name__} while sending",
                channel=channel.name,
            )
            self._record_failure(row, token, error, report)
            return None

        if result.external_ref and row.alert_id:
            refs[(row.alert_id, row.channel)] = result.external_ref
        return result

    def _delivery(
        self, channel: Channel, row: ClaimedRow, refs: dict[tuple[str, str], str]
    ) -> Delivery:
        notices = tuple(Notice.from_json(item) for item in row.notices)
        links = {}
        sign = channel.context.sign_links
        if sign is not None:
            links = {
                notice.alert_id: _with_approval(
                    notice, sign(notice.alert_id, channel.name), channel.context.public_url
                )
                for notice in notices
            }
        return Delivery(
            id=row.id,
            channel=row.channel,
            event=row.event,  # type: ignore[arg-type]
            notices=notices,
            created_at=row.created_at,
            external_ref=refs.get((row.alert_id, row.channel)) if row.alert_id else None,
            links=links,
        )

    # -- recording outcomes ---------------------------------------------------------------------

    def _record_sent(self, sent: list[SentRow], token: str, report: WorkerReport) -> None:
        """Mark sent rows in one transaction and store their external references.

        NOTE: a crash between a send and this write leaves the row claimed, and it is sent
        again when the lease ends. Channels with an idempotency key or a lookup (webhook-id,
        PagerDuty dedup_key, Jira label, ServiceNow correlation_id) absorb the repeat. Slack,
        Teams and email deliver the message twice.
        """
        if not sent:
            return
        outbox_values = [
            {"row_id": item.row.id, "sent_at": item.sent_at, "attempts": item.row.attempts + 1,
             "ref": item.result.external_ref}
            for item in sent
        ]
        ref_values = [
            {"alert": item.row.alert_id, "channel_name": item.row.channel,
             "ref": item.result.external_ref}
            for item in sent
            if item.result.external_ref and item.row.alert_id
        ]
        with self.store.transaction() as session:
            connection = session.connection()
            changed = connection.execute(_mark_sent(token), outbox_values).rowcount
            if ref_values:
                connection.execute(_store_external_ref(), ref_values)
            for item in sent:
                self._audit(session, item.row, "sent", item.row.attempts + 1,
                            external_ref=item.result.external_ref)
        if changed != len(sent):
            logger.warning(
                "%d outbox rows were sent to %s after their claim lease ended; another worker "
                "may send them again", len(sent) - changed, sent[0].row.channel,
            )
        report.sent += len(sent)
        DELIVERIES.labels(channel=sent[0].row.channel, outcome="sent").inc(len(sent))
        logger.debug("%d outbox rows sent to %s", len(sent), sent[0].row.channel)

    def _record_failure(
        self, row: ClaimedRow, token: str, error: DeliveryError, report: WorkerReport
    ) -> None:
        now = self.clock()
        attempts = row.attempts + 1
        message = redact(str(error), self._secrets)
        retry_after = getattr(error, "retry_after", None)
        with self._rng_lock:
            delay = retry_delay(
                attempts, retry_after, base=self.delivery.backoff_base_seconds,
                cap=self.delivery.backoff_max_seconds, rng=self._rng,
                retry_after_cap=self.delivery.retry_after_max_seconds,
            )
        retry_at = now + timedelta(seconds=delay)
        if isinstance(error, RetryableDeliveryError):
            self._paused[row.channel] = max(retry_at, self._paused.get(row.channel, retry_at))

        outcome = self._failure_outcome(row, attempts, error, now)
        values: dict[str, Any] = {
            "attempts": attempts, "updated_at": now, "claimed_until": None,
            "last_status": error.status, "last_error": message,
        }
        if outcome == "dead":
            values["status"] = "dead"
        else:
            values.update(status="pending", next_attempt_at=retry_at, claimed_by=None)
        with self.store.transaction() as session:
            session.execute(
                update(OutboxRecord)
                .where(OutboxRecord.id == row.id, OutboxRecord.claimed_by == token)
                .values(**values)
            )
            if outcome == "dead":
                self._audit(session, row, "dead", attempts, status=error.status, error=message)
        self._log_failure(row, attempts, outcome, message, retry_at)
        setattr(report, outcome, getattr(report, outcome) + 1)
        DELIVERIES.labels(channel=row.channel, outcome=outcome).inc()

    def _audit(
        self, session: Session, row: ClaimedRow, outcome: str, attempts: int, **fields: Any
    ) -> None:
        """Append the delivery's outcome to the audit trail, in the transaction recording it."""
        record_delivery(
            session, self.audit_tenant, delivery_id=row.id, channel=row.channel,
            event=row.event, alert_id=row.alert_id, outcome=outcome, attempts=attempts, **fields,
        )

    def _failure_outcome(
        self, row: ClaimedRow, attempts: int, error: DeliveryError, now: datetime
    ) -> str:
        if isinstance(error, PermanentDeliveryError):
            return "dead"
        if attempts >= self.delivery.max_attempts:
            return "dead"
        if now - row.created_at > timedelta(hours=self.delivery.max_age_hours):
            return "dead"
        return "retried"

    def _log_failure(
        self, row: ClaimedRow, attempts: int, outcome: str, message: str, retry_at: datetime
    ) -> None:
        if outcome == "dead":
            logger.error(
                "outbox row %s to %s is dead after %d attempts: %s",
                row.id, row.channel, attempts, message,
            )
        else:
            logger.warning(
                "outbox row %s to %s failed (attempt %d), retry at %s: %s",
                row.id, row.channel, attempts, retry_at.isoformat(), message,
            )

    def _release(
        self, rows: Sequence[ClaimedRow], token: str, when: datetime | None, reason: str,
        report: WorkerReport,
    ) -> None:
        """Put claimed rows back to pending without an attempt, due at ``when`` if given."""
        if not rows:
            return
        now = self.clock()
        values: dict[str, Any] = {
            "status": "pending", "claimed_by": None, "claimed_until": None, "updated_at": now,
        }
        if when is not None:
            values["next_attempt_at"] = when
        ids = [row.id for row in rows]
        with self.store.transaction() as session:
            session.execute(
                update(OutboxRecord)
                .where(OutboxRecord.id.in_(ids), OutboxRecord.claimed_by == token)
                .values(**values)
            )
        report.deferred += len(rows)
        DELIVERIES.labels(channel=rows[0].channel, outcome="deferred").inc(len(rows))
        logger.info(
            "%d outbox rows to %s deferred (%s)%s", len(rows), rows[0].channel, reason,
            f" until {when.isoformat()}" if when else "",
        )

    def _expire(self, now: datetime, report: WorkerReport) -> None:
        """Move rows that failed before and outlived ``max_age_hours`` to dead, without sending.

        A row that was never attempted (held by quiet hours, or waiting for a disabled
        channel) does not expire; ``deliveries retry`` resets the attempts, so a retried old
        row gets one more try.
        """
        cutoff = now - timedelta(hours=self.delivery.max_age_hours)
        with self.store.transaction() as session:
            expired = session.execute(
                select(
                    OutboxRecord.id, OutboxRecord.channel, OutboxRecord.alert_id,
                    OutboxRecord.event, OutboxRecord.attempts, OutboxRecord.last_status,
                    OutboxRecord.last_error,
                )
                .where(
                    OutboxRecord.status == "pending",
                    OutboxRecord.attempts > 0,
                    OutboxRecord.created_at < cutoff,
                )
                .limit(self.delivery.batch_size)
            ).all()
            for row_id, channel, alert_id, event, attempts, status, error in expired:
                message = (
                    f"not delivered within notify.delivery.max_age_hours "
                    f"({self.delivery.max_age_hours:g} h); last error: {error or '-'}"
                )
                changed = session.execute(
                    update(OutboxRecord)
                    .where(OutboxRecord.id == row_id, OutboxRecord.status == "pending")
                    .values(status="dead", updated_at=now, last_error=message)
                ).rowcount
                if not changed:
                    continue
                record_delivery(
                    session, self.audit_tenant, delivery_id=row_id, channel=channel,
                    event=event, alert_id=alert_id, outcome="dead", attempts=attempts,
                    status=status, error=message,
                )
                logger.error("outbox row %s to %s is dead: %s", row_id, channel, message)
                report.dead += 1
                DELIVERIES.labels(channel=channel, outcome="dead").inc()

    # -- digests, approvals, gauges -------------------------------------------------------------

    def _collect_digests(self, now: datetime, report: WorkerReport) -> None:
        try:
            from costwarden.notify.outbox import collect_digests
        except ImportError:
            return
        try:
            with self.store.transaction() as session:
                created = collect_digests(session, self.settings, now)
        except Exception as exc:  # noqa: BLE001 - digests must not stop delivery
            logger.error("collecting digests failed: %s", redact(repr(exc), self._secrets))
            return
        report.digests += _count(created)

    def _poll_approvals(self, now: datetime, report: WorkerReport) -> None:
        interval = timedelta(minutes=self.delivery.approval_poll_minutes)
        if self._last_poll is not None and now - self._last_poll < interval:
            return
        self._last_poll = now
        for name in self.sendable_channels():
            channel = self.channels[name]
            if channel.polls:
                self._poll_channel(channel, report)

    def _poll_channel(self, channel: Channel, report: WorkerReport) -> None:
        with self.store.transaction() as session:
            tickets = session.execute(
                select(NotificationRecord.alert_id, NotificationRecord.external_ref).where(
                    NotificationRecord.channel == channel.name,
                    NotificationRecord.external_ref.is_not(None),
                    NotificationRecord.state == "firing",
                )
            ).all()
        client = self._client(channel)
        for alert_id, external_ref in tickets:
            try:
                response = channel.poll(external_ref, alert_id, client)
            except DeliveryError as exc:
                logger.warning(
                    "reading approvals of %s failed: %s", channel.name,
                    redact(str(exc), self._secrets),
                )
                return
            report.polled += 1
            if response is None:
                continue
            outcome = store_response(self.store, response)
            report.responses += int(outcome.created)

    def _refresh_gauges(self, now: datetime) -> None:
        last = self._last_gauges
        if last is not None and (now - last).total_seconds() < GAUGE_SECONDS:
            return
        self._last_gauges = now
        with self.store.transaction() as session:
            by_status = session.execute(
                select(OutboxRecord.status, func.count()).group_by(OutboxRecord.status)
            ).all()
            dead = session.execute(
                select(OutboxRecord.channel, func.count())
                .where(OutboxRecord.status == "dead")
                .group_by(OutboxRecord.channel)
            ).all()
        counts = {status: int(count) for status, count in by_status}
        for status in ("pending", "sending", "sent", "dead", "cancelled"):
            OUTBOX_ROWS.labels(status=status).set(counts.get(status, 0))
        DEAD_LETTERS.clear()
        for name, count in dead:
            DEAD_LETTERS.labels(channel=name).set(int(count))

    # -- resources ------------------------------------------------------------------------------

    def _client(self, channel: Channel) -> httpx.Client:
        client = self._clients.get(channel.name)
        if client is None:
            client = httpx.Client(timeout=channel.settings.timeout_seconds)
            self._clients[channel.name] = client
        return client

    def _bucket(self, channel: Channel) -> TokenBucket:
        bucket = self._buckets.get(channel.name)
        if bucket is None:
            bucket = TokenBucket(channel.settings.rate_per_second, channel.settings.burst)
            self._buckets[channel.name] = bucket
        return bucket

    # -- background thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Run scans in a background thread until ``stop``."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="costwarden-delivery", daemon=True)
        self._thread.start()
        logger.info(
            "delivery worker %s started for %d channels", self.worker_id, len(self.channels)
        )

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop the thread; rows claimed but not sent go back to pending."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("delivery worker did not stop within %.0f s", timeout)
            self._thread = None
        self.close()
        logger.info("delivery worker %s stopped", self.worker_id)

    def close(self) -> None:
        """Close the HTTP clients."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                report = self.run_once()
            except Exception:  # noqa: BLE001 - the loop must survive a failed scan
                logger.exception("delivery scan failed; retrying in %.1f s",
                                 self.delivery.poll_seconds)
                report = None
            if report is not None and report.claimed:
                continue
            self._stopping.wait(self.delivery.poll_seconds)


def _held(row: ClaimedRow, channel: Channel) -> bool:
    """Return whether quiet hours hold the row: all rows but critical ones, or all with
    hold_critical."""
    quiet = channel.settings.quiet_hours
    assert quiet is not None
    return quiet.hold_critical or not row.critical


def _due_condition(now: datetime) -> Any:
    return or_(
        and_(OutboxRecord.status == "pending", OutboxRecord.next_attempt_at <= now),
        and_(OutboxRecord.status == "sending", OutboxRecord.claimed_until < now),
    )


def _claim_rows(
    session: Session,
    names: list[str],
    caps: dict[str, int],
    now: datetime,
    token: str,
    lease_end: datetime,
    limit: int,
) -> None:
    """Mark up to ``limit`` due rows, at most ``caps[channel]`` per channel, claimed by ``token``.

    PostgreSQL locks the candidates with ``FOR UPDATE SKIP LOCKED``, so concurrent workers pick
    different rows. SQLite runs one conditional UPDATE. SQLite serialises writers and the UPDATE
    checks the due condition again, so a row that another process claimed first is left alone.
    """
    due = _due_condition(now)
    ranked = (
        select(
            OutboxRecord.id,
            OutboxRecord.channel,
            OutboxRecord.next_attempt_at,
            func.row_number()
            .over(
                partition_by=OutboxRecord.channel,
                order_by=(OutboxRecord.next_attempt_at, OutboxRecord.created_at, OutboxRecord.id),
            )
            .label("rank"),
        )
        .where(due, OutboxRecord.channel.in_(names))
        .subquery()
    )
    cap = case(caps, value=ranked.c.channel, else_=0)
    candidates = (
        select(ranked.c.id).where(ranked.c.rank <= cap).order_by(ranked.c.next_attempt_at)
        .limit(limit)
    )

    if session.get_bind().dialect.name == "postgresql":
        locked = session.scalars(
            select(OutboxRecord.id)
            .where(OutboxRecord.id.in_(candidates), due)
            .with_for_update(skip_locked=True)
        ).all()
        if not locked:
            return
        target: Any = OutboxRecord.id.in_(locked)
    else:
        target = OutboxRecord.id.in_(candidates)

    session.execute(
        update(OutboxRecord)
        .where(target, due)
        .values(status="sending", claimed_by=token, claimed_until=lease_end, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _mark_sent(token: str) -> Any:
    """Return an UPDATE that marks one row sent, for executemany over sent rows.

    The error of an earlier failed attempt is cleared; the audit trail keeps it.
    """
    table = OutboxRecord.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("row_id"), table.c.claimed_by == token)
        .values(
            status="sent", sent_at=bindparam("sent_at"), updated_at=bindparam("sent_at"),
            attempts=bindparam("attempts"), claimed_until=None, external_ref=bindparam("ref"),
            last_status=None, last_error=None,
        )
    )


def _store_external_ref() -> Any:
    """Return an UPDATE that stores the external reference of one (alert, channel)."""
    table = NotificationRecord.__table__
    return (
        update(table)
        .where(table.c.alert_id == bindparam("alert"), table.c.channel == bindparam("channel_name"))
        .values(external_ref=bindparam("ref"))
    )


def _claimed_row(record: OutboxRecord) -> ClaimedRow:
    return ClaimedRow(
        id=record.id,
        channel=record.channel,
        alert_id=record.alert_id,
        event=record.event,
        notices=list(record.notices),
        created_at=record.created_at,
        attempts=record.attempts or 0,
    )


def _external_refs(session: Session, rows: list[ClaimedRow]) -> dict[tuple[str, str], str]:
    """Return the stored external reference of each (alert, channel) among ``rows``."""
    alert_ids = sorted({row.alert_id for row in rows if row.alert_id})
    if not alert_ids:
        return {}
    records = session.execute(
        select(
            NotificationRecord.alert_id, NotificationRecord.channel, NotificationRecord.external_ref
        ).where(
            NotificationRecord.alert_id.in_(alert_ids),
            NotificationRecord.external_ref.is_not(None),
        )
    ).all()
    return {(alert_id, channel): ref for alert_id, channel, ref in records}


def _count(created: object) -> int:
    if isinstance(created, int):
        return created
    if isinstance(created, Sequence | set | dict):
        return len(created)
    return 0

def _with_approval(notice: Notice, links: ActionLinks, public_url: str | None) -> ActionLinks:
    """Point the approve and reject links at the notice's approval request, when it has one."""
    approval = notice.approval or {}
    approve, reject = approval.get("approve_token"), approval.get("reject_token")
    if not approve or not reject or not public_url:
        return links
    base = public_url.rstrip("/")
    return replace(links, approve=f"{base}/actions/{approve}", reject=f"{base}/actions/{reject}")


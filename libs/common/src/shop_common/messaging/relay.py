"""Outbox relay: publishes committed outbox rows to RabbitMQ, marking them sent after confirm.

Delivery is at least once. A row is marked sent only in the transaction that claimed it,
after the broker confirmed the message; if the relay dies in between, the row is claimed
and published again later (consumers deduplicate by event id). Rows are claimed with
`FOR UPDATE SKIP LOCKED`, so any number of relays can run against one outbox and each row
is published by one of them at a time. There is no high-water mark: every pass looks for
all unsent rows, so a row whose transaction committed late is never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import aiormq
from aiormq.exceptions import DeliveryError, PublishError
from sqlalchemy import Interval, Row, Table, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shop_common.messaging import metrics
from shop_common.messaging._aio import wait_any
from shop_common.messaging.backoff import Backoff
from shop_common.messaging.connection import BrokerSession
from shop_common.messaging.envelope import Envelope, to_frame
from shop_common.messaging.errors import BrokerUnavailableError
from shop_common.messaging.outbox import notify_channel, register_local_relay
from shop_common.messaging.topology import DEFAULT_EXCHANGE, declare_events_exchange
from shop_common.tracing import (
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
    current_trace_headers,
    failed,
    producer_span,
)

_PING = text("SELECT 1")
FAILURE_REASONS = ("unroutable", "nacked", "invalid", "broker_error")
log = logging.getLogger(__name__)

# Called with the ids the broker confirmed, before they are marked sent (a test seam).
ConfirmedHook = Callable[[Sequence[UUID]], Awaitable[None]]


class _Statements:
    """The relay's SQL for one outbox table, built once: the same text (and prepared plan)
    on every pass, whatever the batch."""

    def __init__(self, t: Table) -> None:
        self.claim = (
            select(t.c.id, t.c.seq, t.c.source, t.c.type, t.c.subject, t.c.payload)
            .add_columns(t.c.headers, t.c.created_at, t.c.attempts)
            .where(
                t.c.published_at.is_(None),
                t.c.available_at <= func.now(),
                t.c.seq > bindparam("after"),
            )
            .order_by(t.c.seq)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )
        ids = bindparam("ids", type_=ARRAY(t.c.id.type))
        self.mark_sent = (
            update(t)
            .where(t.c.id == func.any(ids))
            .values(published_at=func.now(), attempts=t.c.attempts + 1)
        )
        self.mark_failed = (
            update(t)
            .where(t.c.id == bindparam("row_id"))
            .values(
                attempts=t.c.attempts + 1,
                last_error=bindparam("error"),
                available_at=func.now() + bindparam("wait", type_=Interval()),
            )
        )


@dataclass(frozen=True)
class _Failure:
    reason: str  # metrics label: unroutable, nacked, invalid or broker_error
    error: str


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        table: Table,
        amqp_url: str,
        exchange: str = DEFAULT_EXCHANGE,
        batch_size: int = 250,
        poll_interval: float = 2.0,
        publish_timeout: float = 10.0,
        row_retry_max: float = 60.0,
        gauge_interval: float = 1.0,
        backoff: Backoff | None = None,
        on_confirmed: ConfirmedHook | None = None,
    ) -> None:
        self.engine = engine
        self.table = table
        self.amqp_url = amqp_url
        self.exchange_name = exchange
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.row_retry_max = row_retry_max
        self.gauge_interval = gauge_interval
        self._gauges_due = 0.0  # monotonic time of the next gauge refresh; the first pass does
        self.backoff = backoff or Backoff(initial=0.2, maximum=30.0)
        self.on_confirmed = on_confirmed
        self.name = notify_channel(table)
        self._publish_duration = metrics.RELAY_PUBLISH_DURATION.labels(self.name)
        for reason in FAILURE_REASONS:  # every reason exported at 0, so a rate starts at once
            metrics.OUTBOX_FAILURES.labels(self.name, reason)
        self._broker: BrokerSession | None = None
        self._channel: aiormq.Channel | None = None
        self._listener: tuple[AsyncConnection, Any] | None = None
        self._wake = asyncio.Event()
        self._claimed = 0
        # Where the next pass resumes (a seq), or 0: from the oldest unsent row. See _claim.
        self._after = 0
        self._full_pass_due = 0.0
        self._statements = _Statements(table)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set: on NOTIFY, every `poll_interval`, and after outages.

        While it runs, units of work of this process that mark their session (the
        consumer's) wake it directly after commit, without a NOTIFY."""
        unregister = register_local_relay(self.name, self.wake)
        try:
            while not stop.is_set():
                try:
                    await self._listen()
                    self._wake.clear()  # before the pass: a NOTIFY during it is not lost
                    await self.publish_pending_once()
                    self.backoff.reset()
                except Exception as exc:
                    delay = self.backoff.next_delay()
                    log.warning("relay %s: %r; retrying in %.2fs", self.name, exc, delay)
                    await self._drop_connections()
                    await wait_any(stop, max_wait=delay)
                    continue
                if self._claimed < self.batch_size:  # a full batch: more may be waiting
                    await wait_any(stop, self._wake, max_wait=self.poll_interval)
        finally:
            unregister()
            await self.close()

    def wake(self) -> None:
        """Start a pass now (e.g. rows were just committed by this process)."""
        self._wake.set()

    async def publish_pending_once(self) -> int:
        """Claim one batch of unsent rows, publish it, mark what the broker confirmed.

        Returns how many rows were marked sent. Raises `BrokerUnavailableError` (after
        recording what did succeed) when the broker connection failed mid-batch.
        """
        channel = await self._ensure_channel()
        outcomes: list[_Failure | None] = []
        async with self.engine.begin() as conn:
            rows = await self._claim(conn)
            if rows:
                started = time.perf_counter()
                outcomes = await self._publish_all(channel, rows)
                self._publish_duration.observe(time.perf_counter() - started)
                confirmed = [row.id for row, f in zip(rows, outcomes, strict=True) if f is None]
                if confirmed and self.on_confirmed is not None:
                    await self.on_confirmed(confirmed)
                await self._record(conn, rows, outcomes)
        published = outcomes.count(None)
        metrics.OUTBOX_PUBLISHED.labels(self.name).inc(published)
        # On a timer, not every pass: counting the backlog is O(backlog) (every pass made a
        # drain quadratic), and under a steady stream it was one more query per event.
        if time.monotonic() >= self._gauges_due:
            await self._refresh_gauges()
        broken = [f for f in outcomes if f is not None and f.reason == "broker_error"]
        if broken:
            raise BrokerUnavailableError(broken[0].error)
        return published

    async def _claim(self, conn: AsyncConnection) -> Sequence[Row[Any]]:
        """Lock the next batch of unsent rows, oldest first.

        A pass scans the partial index of unsent rows from where the last full batch
        ended, not from its start: rows this relay just marked sent leave dead entries at
        the front of that index until VACUUM, and stepping over all of them on every pass
        made draining a backlog quadratic. Resuming is only a shortcut, never a high-water
        mark: after a pass that found less than a full batch, and at least every
        `poll_interval`, a pass starts from the oldest unsent row again, so a row whose
        transaction committed late (with a lower seq) waits at most that long.
        """
        now = time.monotonic()
        if now >= self._full_pass_due:
            self._after = 0
        if self._after == 0:
            self._full_pass_due = now + self.poll_interval
        rows = (
            await conn.execute(
                self._statements.claim, {"after": self._after, "limit": self.batch_size}
            )
        ).all()
        self._claimed = len(rows)
        self._after = rows[-1].seq if len(rows) == self.batch_size else 0
        return rows

    async def close(self) -> None:
        await self._drop_connections()

    async def _publish_all(
        self, channel: aiormq.Channel, rows: Sequence[Row[Any]]
    ) -> list[_Failure | None]:
        """Publish every row, all in flight at once; one outcome per row, in row order.

        The publishes start in seq order on one channel, so the broker receives them in
        order. One timer bounds the whole batch: a row not confirmed by then failed.
        """
        tasks = [asyncio.ensure_future(self._publish(channel, row)) for row in rows]
        done, pending = await asyncio.wait(tasks, timeout=self.publish_timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        timed_out = _Failure("broker_error", f"broker error: no confirm in {self.publish_timeout}s")
        return [task.result() if task in done else timed_out for task in tasks]

    async def _publish(self, channel: aiormq.Channel, row: Row[Any]) -> _Failure | None:
        # The PRODUCER span continues the context the row was written in; the message
        # carries this span's context, so the consumer's span is its child.
        with producer_span(
            exchange=self.exchange_name,
            routing_key=row.type,
            message_id=str(row.id),
            parent=row.headers,
        ) as span:
            failure = await self._publish_row(channel, row)
            if failure is not None:
                failed(span, failure.reason)
            return failure

    async def _publish_row(self, channel: aiormq.Channel, row: Row[Any]) -> _Failure | None:
        try:
            trace_headers = current_trace_headers()
            envelope = Envelope(
                id=row.id,
                source=row.source,
                type=row.type,
                subject=row.subject,
                time=row.created_at,
                data=row.payload,
                traceparent=trace_headers.get(TRACEPARENT_HEADER),
                tracestate=trace_headers.get(TRACESTATE_HEADER),
            )
            body, properties = to_frame(envelope)
        except (ValueError, TypeError) as exc:  # a row nobody should have written
            return _Failure("invalid", f"invalid row: {exc}")
        try:
            # wait=False: the frame is queued for the connection's writer, and the channel
            # is free for the next publish at once (no round through the writer per row).
            confirmation = await channel.basic_publish(
                body,
                exchange=self.exchange_name,
                routing_key=envelope.type,
                properties=properties,
                mandatory=True,
                wait=False,
            )
        except PublishError as exc:  # Basic.Return: no queue is bound for this type
            return _Failure("unroutable", f"unroutable: {exc}")
        except DeliveryError as exc:
            return _Failure("nacked", f"nacked: {exc}")
        except (aiormq.exceptions.AMQPError, RuntimeError, OSError, TimeoutError) as exc:
            return _Failure("broker_error", f"broker error: {exc!r}")
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            return _Failure("nacked", f"not acknowledged: {confirmation!r}")
        return None

    async def _record(
        self, conn: AsyncConnection, rows: Sequence[Row[Any]], outcomes: Sequence[_Failure | None]
    ) -> None:
        confirmed = [row.id for row, failure in zip(rows, outcomes, strict=True) if not failure]
        if confirmed:
            await conn.execute(self._statements.mark_sent, {"ids": confirmed})
        for row, failure in zip(rows, outcomes, strict=True):
            if failure is None:
                continue
            metrics.OUTBOX_FAILURES.labels(self.name, failure.reason).inc()
            log.warning(
                "relay %s: event %s (%s) not published: %s",
                self.name,
                row.id,
                row.type,
                failure.error,
            )
            # A broker outage is retried by the run loop's backoff; a bad row waits on its own.
            wait = 0.0 if failure.reason == "broker_error" else self._row_delay(row.attempts)
            values = {
                "row_id": row.id,
                "error": failure.error[:2000],
                "wait": timedelta(seconds=wait),
            }
            await conn.execute(self._statements.mark_failed, values)

    def _row_delay(self, attempts: int) -> float:
        return min(self.row_retry_max, 0.5 * 2.0 ** min(int(attempts), 16))

    async def _refresh_gauges(self) -> None:
        """Pending count and lag, outside the claim transaction, in one round trip."""
        self._gauges_due = time.monotonic() + self.gauge_interval
        t = self.table
        unsent = t.c.published_at.is_(None)
        # The oldest by seq, through the partial index, not min() over the whole backlog.
        oldest_q = select(t.c.created_at).where(unsent).order_by(t.c.seq).limit(1)
        async with self.engine.connect() as conn:
            pending, oldest = (
                await conn.execute(
                    select(func.count(), oldest_q.scalar_subquery()).select_from(t).where(unsent)
                )
            ).one()
        metrics.OUTBOX_PENDING.labels(self.name).set(pending)
        lag = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        metrics.OUTBOX_LAG.labels(self.name).set(max(lag, 0.0))

    async def _ensure_channel(self) -> aiormq.Channel:
        if self._broker is not None and self._channel is not None and self._broker.usable:
            return self._channel
        await self._drop_broker()
        broker = await BrokerSession.open(self.amqp_url, name=f"{self.name} relay")
        try:
            channel = await broker.channel(confirms=True)
            await declare_events_exchange(channel, self.exchange_name)
            underlay = await channel.get_underlay_channel()
            if not isinstance(underlay, aiormq.Channel):
                raise TypeError(f"unexpected channel {underlay!r}")
            self._channel = underlay
        except BaseException:
            await broker.close()
            raise
        self._broker = broker
        return self._channel

    async def _listen(self) -> None:
        """LISTEN on the outbox channel on a dedicated connection (NOTIFY wakes the loop)."""
        if self._listener is not None and not self._listener[1].is_closed():
            return
        await self._drop_listener()
        conn = await self._live_connection()
        try:
            driver = (await conn.get_raw_connection()).driver_connection
            if driver is None:
                raise RuntimeError("no driver connection to LISTEN on")
            await driver.add_listener(self.name, self._on_notify)
            # A dead LISTEN connection must wake the loop, which then listens anew.
            driver.add_termination_listener(self._on_notify)
        except BaseException:
            await conn.invalidate()
            await conn.close()
            raise
        self._listener = (conn, driver)
        self._wake.set()  # rows may have been committed while nobody listened

    async def _live_connection(self) -> AsyncConnection:
        """A pooled connection that answers. LISTEN goes to the driver directly, past
        SQLAlchemy's disconnect handling, so a statement through SQLAlchemy comes first: on a
        connection the server dropped it invalidates the whole pool (all were dropped
        together, in a restart or failover) and the second try gets a fresh one, instead of
        the loop walking the dead ones one backoff at a time."""
        for attempt in (1, 2):
            conn = await self.engine.connect()
            try:
                await conn.execute(_PING)
                # End the ping's transaction: a session inside one gets no notifications.
                await conn.rollback()
            except DBAPIError as exc:
                await conn.close()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
                continue
            return conn
        raise AssertionError("unreachable")

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _drop_connections(self) -> None:
        await self._drop_broker()
        await self._drop_listener()

    async def _drop_broker(self) -> None:
        broker, self._broker, self._channel = self._broker, None, None
        if broker is not None:
            await broker.close()

    async def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        conn, driver = listener
        with contextlib.suppress(Exception):
            if driver.is_closed():
                await conn.invalidate()
            else:
                await asyncio.wait_for(driver.remove_listener(self.name, self._on_notify), 5)
        with contextlib.suppress(Exception):
            await conn.close()

"""Idempotent event consumer: inbox rows and handler effects in one transaction, ack after commit.

Deliveries are taken in batches: whatever has arrived, up to `batch_size`, in delivery
order. Each is parsed first (unreadable, unknown, invalid or from another producer than
its type's owner -> parking queue). The rest run in ONE transaction: their event ids go
into the inbox in one statement (an id already there is a duplicate, and its handler is
skipped), each handler runs in turn, the transaction commits, and only then is each
message acked. If anything in the batch fails, the transaction rolls back and the batch
is applied again one message per transaction, so a failing message fails alone: it is
retried through a delay queue up to `max_retries`, then parked with the reason
(`PermanentError` parks at once). A message is acked only after its copy in a retry or
parking queue was confirmed, so nothing is dropped;
a crash in between leaves a duplicate, which the inbox absorbs.

A failure of the service's own database never spends a message's retry budget: contention
(deadlock, serialization failure) and a broken connection are retried soon, uncounted, and
while the database does not answer the consumer pauses (it stops its subscription and
holds the messages in hand, unacked) until a probe succeeds. ADR 0011 says why each
guarantee still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError
from sqlalchemy import Table, TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.events import UnknownEventTypeError, parse_payload, payload_model
from shop_common.messaging import metrics
from shop_common.messaging._aio import wait_any
from shop_common.messaging.backoff import Backoff
from shop_common.messaging.connection import BrokerSession
from shop_common.messaging.envelope import Envelope, from_message, producer_source
from shop_common.messaging.errors import EnvelopeError, PermanentError
from shop_common.messaging.failures import Failure, failure_of
from shop_common.messaging.inbox import record_new
from shop_common.messaging.outbox import WAKE_AFTER_COMMIT, wake_local_relays
from shop_common.messaging.parking import (
    LAST_ERROR_HEADER,
    PARKED_AT_HEADER,
    PARKED_REASON_HEADER,
    RETRIES_HEADER,
    copy_message,
)
from shop_common.messaging.topology import ConsumerTopology, declare_consumer_topology
from shop_common.tracing import consumer_span

log = logging.getLogger(__name__)

# async def handler(session, envelope, payload) -> None. It runs inside the transaction
# that also records the event in the inbox: it must not commit, and may enqueue events.
Handler = Callable[[AsyncSession, Envelope, Any], Awaitable[None]]


async def acknowledge(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
    """The handler of a type a service consumes only to keep it routable (the relay treats
    an unroutable event as a failure): the consumer validates the event, then acks it
    without a transaction or an inbox record, since applying nothing twice changes nothing."""


# A message whose own handling breaks the database connection this many times in a row,
# while the database answers every probe, is treated as the message's failure after all:
# it may be what crashes the backend, and retrying it uncounted would do so forever.
MAX_UNCOUNTED_CONNECTION_LOSSES = 10
# How often the session looks at its parking queue's depth (a passive declare).
PARKED_GAUGE_INTERVAL = 15.0


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    RETRIED = "retried"
    PARKED = "parked"


@dataclass(frozen=True, slots=True)
class _Delivery:
    """A message that parsed, with its handler and validated payload: ready to apply."""

    message: AbstractIncomingMessage
    envelope: Envelope
    handler: Handler
    payload: Any


class _Stopping(Exception):
    """The worker is stopping or the broker session was lost while the consumer waited."""


class _Link:
    """One broker session's consuming side: the subscription that pausing stops and restarts."""

    def __init__(
        self,
        *,
        broker: BrokerSession,
        channel: AbstractChannel,
        queue: AbstractQueue,
        dlx: AbstractExchange,
        deliveries: asyncio.Queue[AbstractIncomingMessage | None],
        stop: asyncio.Event,
    ) -> None:
        self.broker, self.channel, self.queue, self.dlx = broker, channel, queue, dlx
        self.deliveries = deliveries
        self.stop = stop
        self.tag: str | None = None
        self._watched = False

    async def subscribe(self) -> None:
        async def on_message(message: AbstractIncomingMessage) -> None:
            self.deliveries.put_nowait(message)

        first = self.tag is None and not self._watched
        self.tag = await self.queue.consume(on_message)
        if first:  # one watch per channel: it follows whichever tag is current
            await self.broker.watch_consumer(self.channel, lambda: self.tag)
            self._watched = True

    async def unsubscribe(self) -> None:
        """No new deliveries; the ones in hand stay ours (unacked) until we settle them."""
        tag, self.tag = self.tag, None
        if tag is not None:
            await self.queue.cancel(tag)

    async def is_healthy(self) -> bool:
        if self.tag is None:  # paused on purpose: only the connection itself must be alive
            return not self.broker.lost.is_set() and not self.channel.is_closed
        return await self.broker.is_consuming(self.channel, self.tag)

    @property
    def ending(self) -> bool:
        return self.stop.is_set() or self.broker.lost.is_set()


class EventConsumer:
    """Consumes one service's queue with its handlers, reconnecting on its own."""

    def __init__(
        self,
        *,
        amqp_url: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        inbox: Table,
        topology: ConsumerTopology,
        handlers: Mapping[str, Handler],
        prefetch: int = 10,
        batch_size: int | None = None,
        batch_lock_timeout: float = 0.2,
        shutdown_timeout: float = 10.0,
        watchdog_interval: float = 5.0,
        publish_timeout: float = 10.0,
        probe_timeout: float = 5.0,
        backoff: Backoff | None = None,
        pause_backoff: Backoff | None = None,
    ) -> None:
        if not handlers:
            raise ValueError("a consumer needs at least one handler")
        for event_type in handlers:
            payload_model(event_type)  # raises UnknownEventTypeError for a type not in the registry
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        if batch_size is not None and not 1 <= batch_size <= prefetch:
            raise ValueError("batch_size must be between 1 and prefetch")
        self.amqp_url = amqp_url
        self.sessionmaker = sessionmaker
        self.inbox = inbox
        self.topology = topology
        self.handlers = dict(handlers)
        self.prefetch = prefetch
        self.batch_size = batch_size or prefetch
        # A batch holds several messages' row locks until it commits: rather than wait long
        # behind another transaction (or for PostgreSQL to break a deadlock with another
        # replica's batch, 1 s by default), it gives up and its messages go one by one.
        self._batch_lock_timeout = _lock_timeout(batch_lock_timeout)
        self.shutdown_timeout = shutdown_timeout
        self.watchdog_interval = watchdog_interval
        self.publish_timeout = publish_timeout
        self.probe_timeout = probe_timeout
        self.backoff = backoff or Backoff(initial=0.2, maximum=30.0)
        # Between probes of a database that does not answer.
        self.pause_backoff = pause_backoff or Backoff(initial=0.5, maximum=30.0)
        self._again = Backoff(initial=0.05, maximum=5.0)  # contention, a broken connection
        # Set while subscribed and taking work: readiness probes and tests. Cleared while
        # paused for the database, and while no broker session is up.
        self.ready = asyncio.Event()
        self._paused_since: float | None = None
        self._connection_losses: dict[UUID, int] = {}
        queue = topology.queue
        self._batch_sizes = metrics.CONSUMER_BATCH_SIZE.labels(queue)
        self._paused_gauge = metrics.CONSUMER_PAUSED.labels(queue)
        self._handle_duration = metrics.CONSUMER_HANDLE_DURATION.labels(queue)
        self._counters: dict[tuple[str, Outcome], Any] = {}

    @property
    def paused(self) -> bool:
        """True while the consumer waits for its database (not ready, nothing taken)."""
        return self._paused_since is not None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; on any broker failure, back off and start over."""
        while not stop.is_set():
            try:
                await self._session(stop)
            except Exception as exc:
                delay = self.backoff.next_delay()
                log.warning(
                    "consumer %s: %r; reconnecting in %.2fs", self.topology.queue, exc, delay
                )
                await wait_any(stop, max_wait=delay)

    async def _session(self, stop: asyncio.Event) -> None:
        queue_name = self.topology.queue
        broker = await BrokerSession.open(self.amqp_url, name=f"{queue_name} consumer")
        worker: asyncio.Task[None] | None = None
        try:
            consuming = await broker.channel(confirms=False)
            publishing = await broker.channel(confirms=True)
            await consuming.set_qos(prefetch_count=self.prefetch)
            queue = await declare_consumer_topology(consuming, self.topology, self.handlers)
            dlx = await publishing.declare_exchange(
                self.topology.dead_letter_exchange, ExchangeType.DIRECT, durable=True
            )
            link = _Link(
                broker=broker,
                channel=consuming,
                queue=queue,
                dlx=dlx,
                deliveries=asyncio.Queue(),
                stop=stop,
            )
            if self.paused:  # still waiting for the database since the last session
                try:
                    await self._wait_for_database(link)
                except _Stopping:
                    if stop.is_set():
                        return
                    raise ConnectionError("broker connection lost while paused") from None
            await link.subscribe()
            metrics.CONSUMER_SESSIONS.labels(queue_name).inc()
            self.backoff.reset()
            self._resumed()
            log.info("consumer %s: subscribed", queue_name)
            worker = asyncio.create_task(self._work(link))
            ended = asyncio.Event()
            worker.add_done_callback(lambda _: ended.set())
            parked_due = 0.0
            while not stop.is_set():
                if time.monotonic() >= parked_due:
                    parked_due = time.monotonic() + PARKED_GAUGE_INTERVAL
                    await self._count_parked(publishing)
                await wait_any(stop, broker.lost, ended, max_wait=self.watchdog_interval)
                if worker.done():
                    worker.result()  # raises what ended it
                    raise ConnectionError("consumer stopped taking work")
                if not stop.is_set() and not await link.is_healthy():
                    raise ConnectionError("broker connection, channel or consumer lost")
            # Graceful: no new deliveries, settle the ones in hand (unsettled ones return).
            with contextlib.suppress(Exception):
                await link.unsubscribe()
            link.deliveries.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(worker), self.shutdown_timeout)
        finally:
            self.ready.clear()
            if worker is not None and not worker.done():
                worker.cancel()
                with contextlib.suppress(BaseException):
                    await worker
            await broker.close()

    async def _count_parked(self, channel: AbstractChannel) -> None:
        """The parking queue's depth into `shop_parked_messages`: a passive declare on the
        session's own channel, never a connection of its own. A failure leaves the gauge as
        it was (the session's watchdog finds a broken channel)."""
        try:
            parking = await channel.declare_queue(self.topology.parking_queue, passive=True)
        except Exception as exc:
            log.warning("consumer %s: cannot count parked messages: %r", self.topology.queue, exc)
            return
        depth = parking.declaration_result.message_count
        metrics.PARKED_MESSAGES.labels(self.topology.queue).set(depth or 0)

    async def _work(self, link: _Link) -> None:
        """Take whatever has arrived, up to a batch, until the sentinel (None) or an end."""
        deliveries = link.deliveries
        while True:
            first = await deliveries.get()
            if first is None:
                return
            batch = [first]
            last = False
            while len(batch) < self.batch_size and not deliveries.empty():
                message = deliveries.get_nowait()
                if message is None:
                    last = True
                    break
                batch.append(message)
            try:
                await self._process(batch, link)
            except _Stopping:
                return  # what we hold returns to the queue when the channel closes
            if last:
                return

    async def _process(self, messages: Sequence[AbstractIncomingMessage], link: _Link) -> None:
        """Settle deliveries: parse, apply (as one batch when possible), ack, retry or park."""
        settled: set[int] = set()
        ready: list[_Delivery] = []
        try:
            for n, message in enumerate(messages):
                prepared = self._prepare(message)
                if isinstance(prepared, _Delivery):
                    ready.append(prepared)
                else:
                    event_type, reason = prepared
                    await self._park(message, link.dlx, event_type, reason)
                    settled.add(n)
            if ready:
                self._batch_sizes.observe(len(ready))
                await self._apply(ready, link)
        except _Stopping:
            raise  # unsettled messages return to the queue when the channel closes
        except BaseException:
            # Ack, retry or park failed (usually the connection dropped): the broker
            # redelivers what is unsettled, and the inbox absorbs a duplicate effect.
            for n, message in enumerate(messages):
                if n not in settled and not message.processed:
                    with contextlib.suppress(Exception):
                        await message.nack(requeue=True)
            raise

    def _prepare(self, message: AbstractIncomingMessage) -> _Delivery | tuple[str, str]:
        """The delivery ready to apply, or (event type for metrics, reason to park it)."""
        try:
            envelope = from_message(message)
        except EnvelopeError as exc:
            return "unknown", f"malformed envelope: {exc}"
        handler = self.handlers.get(envelope.type)
        if handler is None:  # metrics keep "unknown": types we do not know are unbounded
            return "unknown", f"no handler for type {envelope.type!r}"
        producer = producer_source(envelope.type)
        if envelope.source != producer:
            reason = (
                f"untrusted source: {envelope.type} comes from {producer}, not {envelope.source}"
            )
            return envelope.type, reason
        try:
            payload = parse_payload(envelope.type, envelope.data)
        except (ValidationError, UnknownEventTypeError) as exc:
            return envelope.type, f"invalid payload: {exc}"
        return _Delivery(message, envelope, handler, payload)

    async def _apply(self, batch: list[_Delivery], link: _Link) -> list[Outcome]:
        """One transaction for the batch; if it fails, one per message (see the module doc)."""
        while True:
            try:
                outcomes = await self._transaction(batch)
                break
            except Exception as exc:
                failure = await self._diagnose(exc)
                if failure is Failure.UNAVAILABLE:
                    await self._pause(link, exc)
                    continue  # the same messages, still ours, as one batch again
                if len(batch) > 1:
                    log.info(
                        "consumer %s: a batch of %d failed (%r); one message at a time",
                        self.topology.queue,
                        len(batch),
                        exc,
                    )
                    return [(await self._apply_one(d, link)) for d in batch]
                [delivery] = batch
                if not self._uncounted(delivery, failure):
                    return [await self._give_up(delivery, link, exc)]
                await self._again_soon(delivery, link, exc, failure)
        self._again.reset()
        if self._connection_losses:
            for delivery in batch:
                self._connection_losses.pop(delivery.envelope.id, None)
        for delivery, outcome in zip(batch, outcomes, strict=True):
            await delivery.message.ack()
            self._settled(delivery, outcome)
        return outcomes

    async def _apply_one(self, delivery: _Delivery, link: _Link) -> Outcome:
        [outcome] = await self._apply([delivery], link)
        return outcome

    def _uncounted(self, delivery: _Delivery, failure: Failure) -> bool:
        """Whether one message's failure is tried again without spending its retries:
        contention, or a broken connection (at most MAX_UNCOUNTED_CONNECTION_LOSSES in a row)."""
        if failure is Failure.CONTENTION:
            return True
        if failure is not Failure.CONNECTION:
            return False
        event_id = delivery.envelope.id
        losses = self._connection_losses[event_id] = self._connection_losses.get(event_id, 0) + 1
        return losses <= MAX_UNCOUNTED_CONNECTION_LOSSES

    async def _again_soon(
        self, delivery: _Delivery, link: _Link, exc: Exception, failure: Failure
    ) -> None:
        self._infrastructure_failure(failure)
        delay = self._again.next_delay()
        log.warning(
            "consumer %s: %s while handling %s %s (%r); again in %.2fs, not counted as a retry",
            self.topology.queue,
            failure.value,
            delivery.envelope.type,
            delivery.envelope.id,
            exc,
            delay,
        )
        await wait_any(link.stop, link.broker.lost, max_wait=delay)
        if link.ending:
            raise _Stopping

    async def _give_up(self, delivery: _Delivery, link: _Link, exc: Exception) -> Outcome:
        """The message's own failure: retried through a delay queue, or parked."""
        self._connection_losses.pop(delivery.envelope.id, None)
        event_type = delivery.envelope.type
        if isinstance(exc, PermanentError):
            reason = f"permanent error: {exc!r}"
            return await self._park(delivery.message, link.dlx, event_type, reason)
        return await self._retry_or_park(delivery.message, link.dlx, event_type, exc)

    async def _transaction(self, batch: Sequence[_Delivery]) -> list[Outcome]:
        applied = [d for d in batch if d.handler is not acknowledge]
        if not applied:  # nothing to write: no transaction, no inbox record
            return [Outcome.HANDLED] * len(batch)
        outcomes: list[Outcome] = []
        wakes: set[str] = set()  # outboxes the handlers wrote to, whose relays run here
        started = time.perf_counter()
        async with self.sessionmaker() as session:
            session.info[WAKE_AFTER_COMMIT] = wakes
            async with session.begin():
                if len(applied) > 1:
                    await session.execute(self._batch_lock_timeout)
                new = await record_new(session, self.inbox, [d.envelope for d in applied])
                for delivery in batch:
                    envelope = delivery.envelope
                    if delivery.handler is acknowledge:
                        outcomes.append(Outcome.HANDLED)
                        continue
                    if envelope.id not in new:
                        outcomes.append(Outcome.DUPLICATE)
                        continue
                    new.discard(envelope.id)  # a second copy in the batch is a duplicate
                    # CONSUMER span, child of the publisher's: what the handler writes
                    # (its outbox rows) continues this trace.
                    with consumer_span(
                        queue=self.topology.queue,
                        routing_key=envelope.type,
                        message_id=str(envelope.id),
                        traceparent=envelope.traceparent,
                        tracestate=envelope.tracestate,
                    ):
                        await delivery.handler(session, envelope, delivery.payload)
                    outcomes.append(Outcome.HANDLED)
        self._handle_duration.observe(time.perf_counter() - started)
        wake_local_relays(wakes)  # committed: this process's relay publishes at once
        return outcomes

    async def _diagnose(self, exc: Exception) -> Failure:
        if isinstance(exc, PermanentError):
            return Failure.MESSAGE
        return failure_of(exc, database_answers=await self._database_answers())

    async def _database_answers(self) -> bool:
        async def probe() -> None:
            async with self.sessionmaker() as session:
                await session.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(probe(), self.probe_timeout)
        except Exception:
            return False
        return True

    async def _pause(self, link: _Link, exc: Exception) -> None:
        """Stop taking work until the database answers; hold what is in hand, unacked.

        Returning a message to a quorum queue would count against its delivery limit, so
        the messages in hand stay ours (the broker sends no more: the subscription is
        cancelled); if the broker session ends meanwhile they return to the queue, as on
        any connection loss.
        """
        self._infrastructure_failure(Failure.UNAVAILABLE)
        if self._paused_since is None:
            self._paused_since = time.monotonic()
            self._paused_gauge.set(1)
            log.warning(
                "consumer %s: paused, the database does not answer (%r); "
                "no message's retries are spent meanwhile",
                self.topology.queue,
                exc,
            )
        self.ready.clear()
        await link.unsubscribe()
        await self._wait_for_database(link)
        await link.subscribe()
        self._resumed()

    async def _wait_for_database(self, link: _Link) -> None:
        """Probe the database with a growing, jittered delay until it answers."""
        while True:
            await wait_any(link.stop, link.broker.lost, max_wait=self.pause_backoff.next_delay())
            if link.ending:
                raise _Stopping
            if await self._database_answers():
                return

    def _resumed(self) -> None:
        if self._paused_since is not None:
            log.warning(
                "consumer %s: resumed after %.1fs, the database answers again",
                self.topology.queue,
                time.monotonic() - self._paused_since,
            )
        self._paused_since = None
        self._paused_gauge.set(0)
        self.pause_backoff.reset()
        self.ready.set()

    def _infrastructure_failure(self, failure: Failure) -> None:
        metrics.CONSUMER_INFRASTRUCTURE_FAILURES.labels(self.topology.queue, failure.value).inc()

    def _settled(self, delivery: _Delivery, outcome: Outcome) -> None:
        self._count(delivery.envelope.type, outcome)
        if log.isEnabledFor(logging.INFO):  # one line per event; nothing built above INFO
            envelope = delivery.envelope
            trace_id = (envelope.traceparent or "")[3:35] or None
            log.info(
                "consumer %s: %s %s %s",
                self.topology.queue,
                outcome.value,
                envelope.type,
                envelope.subject,
                extra={"trace_id": trace_id},
            )

    async def _retry_or_park(
        self,
        message: AbstractIncomingMessage,
        dlx: AbstractExchange,
        event_type: str,
        exc: Exception,
    ) -> Outcome:
        retries = _int_header(message.headers.get(RETRIES_HEADER))
        if retries >= self.topology.max_retries:
            return await self._park(
                message, dlx, event_type, f"failed after {retries} retries: {exc!r}"
            )
        log.info(
            "consumer %s: %s failed (%r), retry %d",
            self.topology.queue,
            event_type,
            exc,
            retries + 1,
        )
        copy = copy_message(
            message, {RETRIES_HEADER: retries + 1, LAST_ERROR_HEADER: repr(exc)[:1000]}
        )
        await dlx.publish(
            copy, self.topology.retry_queue(retries), mandatory=True, timeout=self.publish_timeout
        )
        await message.ack()
        self._count(event_type, Outcome.RETRIED)
        return Outcome.RETRIED

    async def _park(
        self, message: AbstractIncomingMessage, dlx: AbstractExchange, event_type: str, reason: str
    ) -> Outcome:
        log.error("consumer %s: parking %s: %s", self.topology.queue, message.message_id, reason)
        copy = copy_message(
            message,
            {
                PARKED_REASON_HEADER: reason[:2000],
                PARKED_AT_HEADER: datetime.now(UTC).isoformat(),
            },
        )
        await dlx.publish(
            copy, self.topology.parking_queue, mandatory=True, timeout=self.publish_timeout
        )
        await message.ack()
        self._count(event_type, Outcome.PARKED)
        return Outcome.PARKED

    def _count(self, event_type: str, outcome: Outcome) -> None:
        key = (event_type, outcome)
        counter = self._counters.get(key)
        if counter is None:  # one label lookup per (type, outcome), not per event
            counter = metrics.EVENTS_CONSUMED.labels(self.topology.queue, event_type, outcome.value)
            self._counters[key] = counter
        counter.inc()


def _lock_timeout(seconds: float) -> TextClause:
    if seconds <= 0:
        raise ValueError("batch_lock_timeout must be > 0")
    return text(f"SET LOCAL lock_timeout = '{round(seconds * 1000)}ms'")


def _int_header(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, bytes | str):
        with contextlib.suppress(ValueError):
            return max(int(value), 0)
    return 0

"""Idempotent event consumer: inbox row and handler effect in one transaction, ack after commit.

For each delivery: parse the envelope (unreadable -> parking queue), find the handler and
validate the payload (unknown or invalid -> parking queue), then in ONE transaction insert
the event id into the inbox (already there -> duplicate, skip the handler) and run the
handler, commit, and only then ack. A failing handler is retried through a delay queue
up to `max_retries`, then parked with the reason; `PermanentError` parks at once. A
message is acked only after its copy in a retry or parking queue was confirmed, so nothing
is dropped; a crash in between leaves a duplicate, which the inbox absorbs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aio_pika import ExchangeType
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.events import UnknownEventTypeError, parse_payload, payload_model
from shop_common.messaging import metrics
from shop_common.messaging._aio import wait_any
from shop_common.messaging.backoff import Backoff
from shop_common.messaging.connection import BrokerSession
from shop_common.messaging.envelope import Envelope, from_message
from shop_common.messaging.errors import EnvelopeError, PermanentError
from shop_common.messaging.inbox import record_once
from shop_common.messaging.parking import (
    LAST_ERROR_HEADER,
    PARKED_AT_HEADER,
    PARKED_REASON_HEADER,
    RETRIES_HEADER,
    copy_message,
)
from shop_common.messaging.topology import ConsumerTopology, declare_consumer_topology
from shop_common.tracing import trace_context

log = logging.getLogger(__name__)

# async def handler(session, envelope, payload) -> None. It runs inside the transaction
# that also records the event in the inbox: it must not commit, and may enqueue events.
Handler = Callable[[AsyncSession, Envelope, Any], Awaitable[None]]


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    RETRIED = "retried"
    PARKED = "parked"


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
        shutdown_timeout: float = 10.0,
        watchdog_interval: float = 5.0,
        publish_timeout: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        if not handlers:
            raise ValueError("a consumer needs at least one handler")
        for event_type in handlers:
            payload_model(event_type)  # raises UnknownEventTypeError for a type not in the registry
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        self.amqp_url = amqp_url
        self.sessionmaker = sessionmaker
        self.inbox = inbox
        self.topology = topology
        self.handlers = dict(handlers)
        self.prefetch = prefetch
        self.shutdown_timeout = shutdown_timeout
        self.watchdog_interval = watchdog_interval
        self.publish_timeout = publish_timeout
        self.backoff = backoff or Backoff(initial=0.2, maximum=30.0)
        self.ready = asyncio.Event()  # set while subscribed; readiness probes and tests
        self._in_flight: set[asyncio.Task[Any]] = set()

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
        try:
            consuming = await broker.channel(confirms=False)
            publishing = await broker.channel(confirms=True)
            await consuming.set_qos(prefetch_count=self.prefetch)
            queue = await declare_consumer_topology(consuming, self.topology, self.handlers)
            dlx = await publishing.declare_exchange(
                self.topology.dead_letter_exchange, ExchangeType.DIRECT, durable=True
            )

            async def on_message(message: AbstractIncomingMessage) -> None:
                task = asyncio.current_task()
                if task is not None:
                    self._in_flight.add(task)
                try:
                    await self.process(message, dlx)
                except Exception:
                    log.exception("consumer %s: could not settle a message", queue_name)
                finally:
                    if task is not None:
                        self._in_flight.discard(task)

            tag = await queue.consume(on_message)
            await broker.watch_consumer(consuming, tag)
            metrics.CONSUMER_SESSIONS.labels(queue_name).inc()
            self.backoff.reset()
            self.ready.set()
            log.info("consumer %s: subscribed", queue_name)
            while not stop.is_set():
                await wait_any(stop, broker.lost, max_wait=self.watchdog_interval)
                if not stop.is_set() and not await broker.is_consuming(consuming, tag):
                    raise ConnectionError("broker connection, channel or consumer lost")
            # Graceful: no new deliveries, let the ones in hand finish (unacked ones return).
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
            await self._drain()
        finally:
            self.ready.clear()
            await broker.close()

    async def _drain(self) -> None:
        pending = {task for task in self._in_flight if task is not asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=self.shutdown_timeout)

    async def process(self, message: AbstractIncomingMessage, dlx: AbstractExchange) -> Outcome:
        """Run one delivery through parse -> inbox+handler -> ack (or retry, or park)."""
        event_type = "unknown"
        try:
            try:
                envelope = from_message(message)
            except EnvelopeError as exc:
                return await self._park(message, dlx, event_type, f"malformed envelope: {exc}")
            handler = self.handlers.get(envelope.type)
            if handler is None:  # metrics keep "unknown": types we do not know are unbounded
                reason = f"no handler for type {envelope.type!r}"
                return await self._park(message, dlx, event_type, reason)
            event_type = envelope.type
            try:
                payload = parse_payload(envelope.type, envelope.data)
            except (ValidationError, UnknownEventTypeError) as exc:
                return await self._park(message, dlx, event_type, f"invalid payload: {exc}")
            try:
                outcome = await self._handle(envelope, handler, payload)
            except PermanentError as exc:
                return await self._park(message, dlx, event_type, f"permanent error: {exc!r}")
            except Exception as exc:
                return await self._retry_or_park(message, dlx, event_type, exc)
            await message.ack()
            self._count(event_type, outcome)
            if log.isEnabledFor(logging.INFO):  # one line per event; nothing built above INFO
                trace_id = (envelope.traceparent or "")[3:35] or None
                log.info(
                    "consumer %s: %s %s %s",
                    self.topology.queue,
                    outcome.value,
                    event_type,
                    envelope.subject,
                    extra={"trace_id": trace_id},
                )
            return outcome
        except Exception:
            # Ack, retry or park failed (usually the connection dropped): the broker
            # redelivers the message, and the inbox absorbs a duplicate effect.
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            raise

    async def _handle(self, envelope: Envelope, handler: Handler, payload: Any) -> Outcome:
        with trace_context(envelope.traceparent):
            async with self.sessionmaker() as session, session.begin():
                if not await record_once(session, self.inbox, envelope):
                    return Outcome.DUPLICATE
                await handler(session, envelope, payload)
        return Outcome.HANDLED

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
        metrics.EVENTS_CONSUMED.labels(self.topology.queue, event_type, outcome.value).inc()


def _int_header(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, bytes | str):
        with contextlib.suppress(ValueError):
            return max(int(value), 0)
    return 0

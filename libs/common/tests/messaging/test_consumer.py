"""Inbox consumer: one transaction per message, ack after commit, retry, parking."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from aio_pika import Message
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select

from shop_common.events import EventType, OrderCancelledV1
from shop_common.messaging import (
    Envelope,
    EventConsumer,
    ParkedOutcome,
    PermanentError,
    acknowledge,
    replay_parked,
    to_message,
)
from shop_common.tracing import current_traceparent

pytestmark = pytest.mark.integration

CANCELLED = str(EventType.ORDER_CANCELLED_V1)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def cancelled(reason: str | None = None, **overrides) -> Envelope:
    order_id = uuid.uuid4()
    fields = {
        "id": uuid.uuid4(),
        "source": "/orders",
        "type": CANCELLED,
        "subject": str(order_id),
        "time": datetime.now(UTC),
        "data": OrderCancelledV1(order_id=order_id, reason=reason).to_event_data(),
    }
    return Envelope(**(fields | overrides))


def consumer_for(db, kit, handlers, **options) -> EventConsumer:
    return EventConsumer(
        amqp_url=kit.amqp_url,
        sessionmaker=db.sessions,
        inbox=db.inbox_table,
        topology=kit.topology(retry_delays=(0.05, 0.1), max_retries=2),
        handlers=handlers,
        **options,
    )


def record_effect(db):
    async def handler(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        assert isinstance(payload, OrderCancelledV1)
        await session.execute(insert(db.effects).values(event_id=envelope.id, note=payload.reason))

    return handler


async def publish(kit, *messages: Message, routing_key: str = CANCELLED) -> None:
    exchange = await kit.channel.get_exchange(kit.exchange)
    for message in messages:
        await exchange.publish(message, routing_key=routing_key)


async def effects(db) -> Counter[uuid.UUID]:
    async with db.sessions() as session:
        return Counter((await session.execute(select(db.effects.c.event_id))).scalars())


def consumed(kit, outcome: str, event_type: str = CANCELLED) -> float:
    labels = {"queue": f"{kit.names}.events", "type": event_type, "outcome": outcome}
    return REGISTRY.get_sample_value("shop_events_consumed_total", labels) or 0.0


async def parked(kit, count: int):
    queue = await kit.channel.get_queue(f"{kit.names}.events.parking")

    async def enough() -> bool:
        return (await queue.declare()).message_count >= count

    await kit.wait_until(enough, what=f"{count} parked message(s)")
    return await kit.drain(queue, idle=0.1)


async def test_every_message_delivered_twice_has_its_effect_once(db, kit) -> None:
    consumer = consumer_for(db, kit, {CANCELLED: record_effect(db)}, prefetch=8)
    envelopes = [cancelled() for _ in range(25)]
    async with kit.running(consumer):
        await publish(kit, *(to_message(e) for e in envelopes))
        await publish(kit, *(to_message(e) for e in reversed(envelopes)))

        async def all_settled() -> bool:
            return consumed(kit, "handled") + consumed(kit, "duplicate") >= 50

        await kit.wait_until(all_settled, what="50 deliveries")
    assert consumed(kit, "handled") == 25
    assert consumed(kit, "duplicate") == 25
    assert await effects(db) == Counter({e.id: 1 for e in envelopes})
    async with db.sessions() as session:
        assert (
            await session.execute(select(func.count()).select_from(db.inbox_table))
        ).scalar() == 25


async def test_failing_handler_is_retried_and_its_writes_roll_back(db, kit, spans) -> None:
    calls: list[tuple[int, str | None]] = []

    async def flaky(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        calls.append((len(calls), current_traceparent()))
        # Writes, including an outbox event, commit only with the attempt that succeeds.
        await record_effect(db)(session, envelope, payload)
        await db.outbox.enqueue(session, EventType.ORDER_CANCELLED_V1, payload, subject="x")
        if len(calls) < 3:
            raise ConnectionError("database hiccup")

    consumer = consumer_for(db, kit, {CANCELLED: flaky})
    envelope = cancelled(traceparent=TRACEPARENT)
    async with kit.running(consumer):
        await publish(kit, to_message(envelope))
        await kit.wait_until(lambda: _has_effect(db, envelope.id), what="the third attempt")
    assert [n for n, _ in calls] == [0, 1, 2]
    assert consumed(kit, "retried") == 2
    assert await effects(db) == Counter({envelope.id: 1})
    # Each attempt ran in a CONSUMER span of its own, a child of the publisher's span; the
    # failed ones say so. What the handler wrote carries the successful attempt's span.
    processed = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert len(processed) == 3
    caller_trace, caller_span = TRACEPARENT.split("-")[1:3]
    for span, (_, traceparent) in zip(processed, calls, strict=True):
        assert span.name == f"process {consumer.topology.queue}"
        assert span.parent is not None
        assert format(span.parent.span_id, "016x") == caller_span
        assert format(span.context.trace_id, "032x") == caller_trace
        assert traceparent == f"00-{caller_trace}-{span.context.span_id:016x}-01"
        assert span.attributes is not None
        assert span.attributes["messaging.message.id"] == str(envelope.id)
    assert [s.status.status_code for s in processed] == [StatusCode.ERROR] * 2 + [StatusCode.UNSET]
    async with db.sessions() as session:
        outbox = (await session.execute(select(db.outbox_table))).all()
    assert len(outbox) == 1
    assert outbox[0].headers == {"traceparent": calls[-1][1]}


async def test_always_failing_message_is_parked_with_its_reason(db, kit) -> None:
    async def picky(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        if payload.reason == "poison":
            raise ValueError("cannot digest this")
        await record_effect(db)(session, envelope, payload)

    consumer = consumer_for(db, kit, {CANCELLED: picky})
    poison, fine = cancelled("poison"), cancelled("fine")
    async with kit.running(consumer):
        await publish(kit, to_message(poison), to_message(fine))
        [message] = await parked(kit, 1)
        await kit.wait_until(lambda: _has_effect(db, fine.id), what="the good message")
    assert message.message_id == str(poison.id)
    reason = message.headers["x-shop-parked-reason"]
    assert "failed after 2 retries" in reason
    assert "cannot digest this" in reason
    assert message.headers["x-shop-original-routing-key"] == CANCELLED
    assert message.headers["ce-id"] == str(poison.id)  # the event itself is intact
    assert consumed(kit, "retried") == 2
    assert await effects(db) == Counter({fine.id: 1})


async def test_permanent_error_parks_at_once(db, kit) -> None:
    attempts = 0

    async def refuse(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        nonlocal attempts
        attempts += 1
        raise PermanentError("order belongs to nobody")

    consumer = consumer_for(db, kit, {CANCELLED: refuse})
    envelope = cancelled()
    async with kit.running(consumer):
        await publish(kit, to_message(envelope))
        [message] = await parked(kit, 1)
    assert attempts == 1
    assert "order belongs to nobody" in message.headers["x-shop-parked-reason"]
    async with db.sessions() as session:  # parked events are not marked handled
        assert (
            await session.execute(select(func.count()).select_from(db.inbox_table))
        ).scalar() == 0


async def test_malformed_messages_are_parked_and_the_consumer_keeps_going(db, kit) -> None:
    consumer = consumer_for(db, kit, {CANCELLED: record_effect(db)})
    no_headers = Message(b'{"order_id": "x"}', content_type="application/json", message_id="m1")
    not_json = to_message(cancelled())
    not_json.body = b"\x00garbage"
    bad_payload = to_message(cancelled(data={"order_id": "not-a-uuid"}))
    good = cancelled()
    async with kit.running(consumer):
        await publish(kit, no_headers, not_json, bad_payload, to_message(good))
        messages = await parked(kit, 3)
        await kit.wait_until(lambda: _has_effect(db, good.id), what="the good message")
    reasons = sorted(str(m.headers["x-shop-parked-reason"]).split(":")[0] for m in messages)
    assert reasons == ["invalid payload", "malformed envelope", "malformed envelope"]
    assert [m.body for m in messages if m.message_id == "m1"] == [b'{"order_id": "x"}']
    assert await effects(db) == Counter({good.id: 1})


async def test_an_event_from_another_producer_than_its_types_owner_is_parked(db, kit) -> None:
    """`orders.*` comes from /orders only: a forged cancel (another service, or anyone with
    broker access) would release stock, so it is parked, never applied."""
    consumer = consumer_for(db, kit, {CANCELLED: record_effect(db)})
    forged, genuine = cancelled(source="/catalog"), cancelled()
    async with kit.running(consumer):
        await publish(kit, to_message(forged), to_message(genuine))
        [message] = await parked(kit, 1)
        await kit.wait_until(lambda: _has_effect(db, genuine.id), what="the genuine event")
    assert message.message_id == str(forged.id)
    reason = str(message.headers["x-shop-parked-reason"])
    assert reason.startswith("untrusted source")
    assert "/orders" in reason
    assert "/catalog" in reason
    assert await effects(db) == Counter({genuine.id: 1})


async def test_an_acknowledged_type_is_validated_and_acked_without_a_transaction(db, kit) -> None:
    """`acknowledge` is for types consumed only to keep them routable: nothing is written,
    not even an inbox record, but a payload that does not validate is still parked."""
    transactions = 0
    sessions = db.sessions

    def counting_sessions():
        nonlocal transactions
        transactions += 1
        return sessions()

    consumer = consumer_for(db, kit, {CANCELLED: acknowledge})
    consumer.sessionmaker = counting_sessions  # type: ignore[assignment]
    fine, invalid = cancelled(), cancelled(data={"order_id": "not-a-uuid"})
    async with kit.running(consumer):
        await publish(kit, to_message(fine), to_message(invalid))
        [message] = await parked(kit, 1)
        await kit.wait_until(lambda: _handled(kit, 1), what="the acknowledged event")
    assert message.message_id == str(invalid.id)
    assert transactions == 0
    async with db.sessions() as session:
        assert (
            await session.execute(select(func.count()).select_from(db.inbox_table))
        ).scalar() == 0


async def _handled(kit, count: int) -> bool:
    return consumed(kit, "handled") >= count


async def test_graceful_stop_lets_the_handler_in_progress_finish(db, kit) -> None:
    started = asyncio.Event()

    async def slow(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        started.set()
        await asyncio.sleep(0.5)
        await record_effect(db)(session, envelope, payload)

    consumer = consumer_for(db, kit, {CANCELLED: slow})
    envelope = cancelled()
    async with kit.running(consumer):
        await publish(kit, to_message(envelope))
        await asyncio.wait_for(started.wait(), 10)
    assert await effects(db) == Counter({envelope.id: 1})
    assert consumed(kit, "handled") == 1


async def test_parked_messages_can_be_replayed_once_the_cause_is_fixed(db, kit) -> None:
    broken = True

    async def until_fixed(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        if broken:
            raise PermanentError("bug in the handler")
        await record_effect(db)(session, envelope, payload)

    consumer = consumer_for(db, kit, {CANCELLED: until_fixed})
    envelope = cancelled()
    async with kit.running(consumer):
        await publish(kit, to_message(envelope))
        parking = await kit.channel.get_queue(f"{kit.names}.events.parking")

        async def is_parked() -> bool:
            return (await parking.declare()).message_count == 1

        await kit.wait_until(is_parked, what="the parked message")
        broken = False
        report = await replay_parked(kit.amqp_url, consumer.topology)
        assert report.count(ParkedOutcome.REPLAYED) == 1
        await kit.wait_until(lambda: _has_effect(db, envelope.id), what="the replayed message")
    assert (await parking.declare()).message_count == 0
    assert await effects(db) == Counter({envelope.id: 1})


async def test_consumer_cancelled_by_the_broker_subscribes_again(db, kit) -> None:
    """Deleting the queue makes the broker cancel our consumer (a gap of robust connections)."""
    consumer = consumer_for(db, kit, {CANCELLED: record_effect(db)}, watchdog_interval=0.2)
    envelope = cancelled()
    async with kit.running(consumer):
        await kit.channel.queue_delete(f"{kit.names}.events")

        async def resubscribed() -> bool:
            return consumed_sessions(kit) >= 2 and consumer.ready.is_set()

        await kit.wait_until(resubscribed, what="a new subscription")
        await publish(kit, to_message(envelope))
        await kit.wait_until(lambda: _has_effect(db, envelope.id), what="the message")


def consumed_sessions(kit) -> float:
    labels = {"queue": f"{kit.names}.events"}
    return REGISTRY.get_sample_value("shop_consumer_sessions_total", labels) or 0.0


def test_handlers_must_be_known_event_types(db, kit) -> None:
    with pytest.raises(LookupError):
        consumer_for(db, kit, {"orders.order.shipped.v1": record_effect(db)})


async def _has_effect(db, event_id: uuid.UUID) -> bool:
    return (await effects(db))[event_id] > 0

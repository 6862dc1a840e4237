"""Outbox and relay against real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shop_common.events import EventType, OrderCancelledV1, ProductSnapshotV1
from shop_common.messaging import (
    Backoff,
    Envelope,
    EventConsumer,
    OutboxRelay,
    delete_published,
    delete_received,
    notify_channel,
    to_message,
)
from shop_common.tracing import trace_context

pytestmark = pytest.mark.integration

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def snapshot(version: int = 1) -> ProductSnapshotV1:
    return ProductSnapshotV1(
        id=uuid.uuid4(),
        sku=f"SKU-{uuid.uuid4().hex[:6]}",
        name="Mug",
        description="A mug",
        price_cents=1299,
        currency="EUR",
        active=True,
        version=version,
        updated_at=datetime.now(UTC),
    )


def relay_for(db, kit, engine: AsyncEngine, **options) -> OutboxRelay:
    options.setdefault("gauge_interval", 0.0)  # gauges after every pass, so tests can read them
    return OutboxRelay(
        engine=engine,
        table=db.outbox_table,
        amqp_url=kit.amqp_url,
        exchange=kit.exchange,
        **options,
    )


async def enqueue(db, count: int = 1) -> list[uuid.UUID]:
    async with db.sessions() as session, session.begin():
        envelopes = [
            await db.outbox.enqueue(
                session, EventType.PRODUCT_UPDATED_V1, (p := snapshot()), subject=p.id
            )
            for _ in range(count)
        ]
    return [e.id for e in envelopes]


async def rows(db, engine: AsyncEngine):
    t = db.outbox_table
    async with engine.connect() as conn:
        return {r.id: r for r in (await conn.execute(select(t).order_by(t.c.seq))).all()}


async def test_outbox_row_commits_and_rolls_back_with_the_state_change(db, engine) -> None:
    listener = await asyncpg.connect(
        engine.url.render_as_string(hide_password=False).replace("+asyncpg", "")
    )
    notified: list[str] = []
    await listener.add_listener(notify_channel(db.outbox_table), lambda *a: notified.append(a[2]))
    try:

        async def change_then_fail() -> None:
            async with db.sessions() as session, session.begin():
                await session.execute(insert(db.effects).values(event_id=uuid.uuid4()))
                cancelled = OrderCancelledV1(order_id=uuid.uuid4())
                await db.outbox.enqueue(
                    session, EventType.ORDER_CANCELLED_V1, cancelled, subject="o-1"
                )
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await change_then_fail()
        await asyncio.sleep(0.2)
        assert notified == []  # NOTIFY is transactional as well
        async with db.sessions() as session, session.begin():
            await session.execute(insert(db.effects).values(event_id=uuid.uuid4()))
            order_id = uuid.uuid4()
            envelope = await db.outbox.enqueue(
                session,
                EventType.ORDER_CANCELLED_V1,
                OrderCancelledV1(order_id=order_id),
                subject=order_id,
            )
        for _ in range(100):  # delivery is asynchronous; a loaded machine can take a while
            if notified:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # and no second one follows
        assert len(notified) == 1
    finally:
        await listener.close()
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(db.effects))).scalar() == 1
        stored = (await conn.execute(select(db.outbox_table))).one()
    assert stored.id == envelope.id
    assert stored.subject == str(order_id)
    assert stored.payload == {"order_id": str(order_id), "reason": None}
    assert stored.published_at is None


async def test_enqueue_refuses_a_payload_of_the_wrong_type(db) -> None:
    async with db.sessions() as session, session.begin():
        with pytest.raises(TypeError, match="ProductSnapshotV1"):
            await db.outbox.enqueue(
                session,
                EventType.PRODUCT_CREATED_V1,
                OrderCancelledV1(order_id=uuid.uuid4()),
                subject="x",
            )


async def test_relay_publishes_persistent_cloudevents_and_marks_sent_after_confirm(
    db, kit, engine, spans
) -> None:
    spy = await kit.spy_queue()
    async with db.sessions() as session, session.begin():
        product = snapshot()
        with trace_context(TRACEPARENT):
            envelope = await db.outbox.enqueue(
                session, EventType.PRODUCT_CREATED_V1, product, subject=product.id
            )
    seen_at_confirm: list[object] = []

    async def on_confirmed(ids) -> None:
        # The broker has it, the row is not yet marked: a crash here means a re-publish.
        seen_at_confirm.append((list(ids), (await rows(db, engine))[envelope.id].published_at))

    relay = relay_for(db, kit, engine, on_confirmed=on_confirmed)
    try:
        assert await relay.publish_pending_once() == 1
        assert await relay.publish_pending_once() == 0
    finally:
        await relay.close()
    assert seen_at_confirm == [([envelope.id], None)]
    row = (await rows(db, engine))[envelope.id]
    assert row.published_at is not None
    assert row.attempts == 1

    [message] = await kit.drain(spy)
    assert message.delivery_mode == 2
    assert message.routing_key == "catalog.product.created.v1"
    headers = {k: v for k, v in message.headers.items() if isinstance(v, str)}
    event = from_binary(
        RabbitMQMessage(headers=headers, content_type=message.content_type, body=message.body),
        JSONFormat(),
    )
    assert event.get_id() == str(envelope.id)
    assert event.get_source() == "/catalog"
    assert event.get_type() == "catalog.product.created.v1"
    assert event.get_specversion() == "1.0"
    assert event.get_subject() == str(product.id)
    assert event.get_time() is not None
    assert event.get_data() == product.to_event_data()
    # The relay's PRODUCER span continues the context the row was written in, and the
    # message carries the PRODUCER span's context.
    [publish] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    caller_trace, caller_span = TRACEPARENT.split("-")[1:3]
    assert publish.name == f"publish {kit.exchange}"
    assert publish.parent is not None
    assert format(publish.parent.span_id, "016x") == caller_span
    assert headers["traceparent"] == f"00-{caller_trace}-{publish.context.span_id:016x}-01"
    assert publish.attributes is not None
    assert publish.attributes["messaging.system"] == "rabbitmq"
    assert publish.attributes["messaging.rabbitmq.destination.routing_key"] == event.get_type()


async def test_unroutable_message_is_not_marked_sent(db, kit, engine) -> None:
    [event_id] = await enqueue(db)
    relay = relay_for(db, kit, engine)  # nothing is bound to the exchange yet
    try:
        assert await relay.publish_pending_once() == 0
        row = (await rows(db, engine))[event_id]
        assert row.published_at is None
        assert row.attempts == 1
        assert "unroutable" in row.last_error
        assert "NO_ROUTE" in row.last_error
        assert metric(db, "shop_outbox_publish_failures_total", reason="unroutable") == 1
        assert metric(db, "shop_outbox_pending") == 1
        assert metric(db, "shop_outbox_lag_seconds") > 0
        # It backs off on its own before the next try ...
        assert await relay.publish_pending_once() == 0
        assert (await rows(db, engine))[event_id].attempts == 1
        # ... and goes out once someone listens.
        spy = await kit.spy_queue()
        async with engine.begin() as conn:
            await conn.execute(update(db.outbox_table).values(available_at=func.now()))
        assert await relay.publish_pending_once() == 1
    finally:
        await relay.close()
    assert [m.message_id for m in await kit.drain(spy)] == [str(event_id)]
    assert (await rows(db, engine))[event_id].published_at is not None
    assert metric(db, "shop_outbox_published_total") == 1
    assert metric(db, "shop_outbox_pending") == 0
    assert metric(db, "shop_outbox_lag_seconds") == 0


def metric(db, name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"outbox": notify_channel(db.outbox_table), **labels})


async def test_nacked_message_is_not_marked_sent(db, kit, engine, channel) -> None:
    exchange = await channel.declare_exchange(kit.exchange, "topic", durable=True)
    full = await channel.declare_queue(
        f"{kit.names}.full",
        exclusive=True,
        arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    await full.bind(exchange, "#")
    [event_id] = await enqueue(db)
    relay = relay_for(db, kit, engine)
    try:
        assert await relay.publish_pending_once() == 0
    finally:
        await relay.close()
    row = (await rows(db, engine))[event_id]
    assert row.published_at is None
    assert "nack" in row.last_error.lower()


async def test_two_relays_publish_every_row_exactly_once(db, kit, engine) -> None:
    spy = await kit.spy_queue()
    relays = [relay_for(db, kit, engine, batch_size=10) for _ in range(2)]
    for relay in relays:  # connected before there is work, so both get some
        assert await relay.publish_pending_once() == 0
    ids = []
    for _ in range(4):
        ids += await enqueue(db, 50)
    counts = [0, 0]

    async def drive(i: int) -> None:
        while published := await relays[i].publish_pending_once():
            counts[i] += published

    try:
        await asyncio.gather(drive(0), drive(1))
    finally:
        for relay in relays:
            await relay.close()
    assert sum(counts) == 200
    assert min(counts) > 0, f"both relays should have worked: {counts}"
    received = Counter(m.message_id for m in await kit.drain(spy))
    assert set(received) == {str(i) for i in ids}
    assert set(received.values()) == {1}
    assert all(r.published_at is not None for r in (await rows(db, engine)).values())


async def test_a_row_committed_late_is_still_published(db, kit, engine) -> None:
    spy = await kit.spy_queue()
    relay = relay_for(db, kit, engine)
    try:
        async with db.sessions() as slow:
            await slow.begin()
            late = await db.outbox.enqueue(
                slow, EventType.PRODUCT_UPDATED_V1, (p := snapshot()), subject=p.id
            )
            [early] = await enqueue(db)  # takes a higher seq, commits first
            assert await relay.publish_pending_once() == 1
            await slow.commit()
        assert await relay.publish_pending_once() == 1
    finally:
        await relay.close()
    stored = await rows(db, engine)
    assert stored[late.id].seq < stored[early].seq
    assert [m.message_id for m in await kit.drain(spy)] == [str(early), str(late.id)]


async def test_run_wakes_on_notify_and_survives_a_database_disconnect(db, kit, engine) -> None:
    spy = await kit.spy_queue()
    relay = relay_for(db, kit, engine, poll_interval=30)  # so only NOTIFY can wake it quickly
    async with kit.running(relay):
        await asyncio.sleep(0.3)
        [first] = await enqueue(db)
        await kit.wait_until(lambda: _published(db, engine, first), within=5, what="NOTIFY wake-up")
        # Kill the relay's LISTEN connection: it must notice, back off and listen again.
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
                " AND pid <> pg_backend_pid() AND datname = current_database()"
            )
        await asyncio.sleep(0.5)
        [second] = await enqueue(db)
        await kit.wait_until(lambda: _published(db, engine, second), within=10, what="recovery")
    assert [m.message_id for m in await kit.drain(spy)] == [str(first), str(second)]


async def test_run_listens_again_at_once_when_every_pooled_connection_died(
    db, kit, engine, pg_admin_url: str
) -> None:
    """After `pg_terminate_backend` of all its backends (a failover), the relay must not walk
    the dead pooled connections one backoff at a time to LISTEN again (found by make chaos:
    15-45 s without publishing)."""
    spy = await kit.spy_queue()
    relays = create_async_engine(
        pg_admin_url,
        pool_size=8,
        connect_args={"server_settings": {"application_name": "relay-failover-test"}},
    )
    relay = relay_for(db, kit, relays, poll_interval=30)  # only NOTIFY wakes it quickly
    try:
        async with kit.running(relay):
            await asyncio.sleep(0.3)

            async def hold() -> None:
                async with relays.connect() as conn:
                    await conn.exec_driver_sql("SELECT pg_sleep(0.2)")

            await asyncio.gather(*(hold() for _ in range(6)))  # six idle pooled connections
            async with engine.begin() as conn:
                await conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'relay-failover-test'"
                )
            await asyncio.sleep(0.5)
            [event] = await enqueue(db)
            await kit.wait_until(
                lambda: _published(db, engine, event), within=3, what="prompt recovery"
            )
    finally:
        await relays.dispose()
    assert [m.message_id for m in await kit.drain(spy)] == [str(event)]


async def _published(db, engine: AsyncEngine, event_id: uuid.UUID) -> bool:
    return (await rows(db, engine))[event_id].published_at is not None


async def test_run_backs_off_while_the_infrastructure_is_down(db, kit, caplog) -> None:
    """Nothing listens on port 1: both loops keep retrying (bounded) and still stop promptly."""
    dead_db = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    dead_broker = "amqp://guest:guest@127.0.0.1:1/"
    relay = OutboxRelay(
        engine=dead_db,
        table=db.outbox_table,
        amqp_url=dead_broker,
        backoff=Backoff(initial=0.05, maximum=0.2),
    )
    consumer = EventConsumer(
        amqp_url=dead_broker,
        sessionmaker=db.sessions,
        inbox=db.inbox_table,
        topology=kit.topology(),
        handlers={"orders.order.cancelled.v1": _never},
        backoff=Backoff(initial=0.05, maximum=0.2),
    )
    try:
        async with kit.running(relay, consumer, wait_ready=False):
            await asyncio.sleep(1.0)
    finally:
        await dead_db.dispose()
    retries = [
        r for r in caplog.records if "retrying in" in r.message or "reconnecting" in r.message
    ]
    assert len([r for r in retries if r.name.endswith("relay")]) >= 3
    assert len([r for r in retries if r.name.endswith("consumer")]) >= 3


async def _never(session, envelope, payload) -> None:
    raise AssertionError("no message can arrive")


async def test_retention_deletes_only_old_rows(db, kit, engine) -> None:
    spy = await kit.spy_queue()
    old, recent, unsent = await enqueue(db, 3)
    relay = relay_for(db, kit, engine)
    try:
        assert await relay.publish_pending_once() == 3
    finally:
        await relay.close()
    t, inbox = db.outbox_table, db.inbox_table
    async with engine.begin() as conn:
        await conn.execute(update(t).where(t.c.id == unsent).values(published_at=None))
        await conn.execute(
            update(t).where(t.c.id == old).values(published_at=func.now() - timedelta(days=8))
        )
        await conn.execute(
            insert(inbox).values(
                [
                    {"event_id": old, "type": "x.y.v1", "source": "/t"},
                    {"event_id": recent, "type": "x.y.v1", "source": "/t"},
                ]
            )
        )
        await conn.execute(
            update(inbox)
            .where(inbox.c.event_id == old)
            .values(received_at=func.now() - timedelta(days=8))
        )
        assert await delete_published(conn, t, timedelta(days=7)) == 1
        assert await delete_received(conn, inbox, timedelta(days=7)) == 1
    assert set(await rows(db, engine)) == {recent, unsent}
    await kit.drain(spy)


async def test_draining_a_backlog_counts_it_on_a_timer_not_every_pass(db, kit, engine) -> None:
    """Counting the unsent rows on every pass made a drain quadratic: one count per
    `gauge_interval`, however many batches the drain takes."""
    await kit.spy_queue()
    await enqueue(db, 50)
    counts: list[str] = []

    def note(_conn, _cursor, statement: str, *_: object) -> None:
        if "count(" in statement.lower():
            counts.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    relay = relay_for(db, kit, engine, batch_size=10, gauge_interval=3600.0)
    try:
        passes = 0
        while await relay.publish_pending_once():
            passes += 1
    finally:
        await relay.close()
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert passes == 5
    assert len(counts) == 1
    assert metric(db, "shop_outbox_published_total") == 50


async def test_a_consumers_events_wake_its_own_relay_without_a_notify(
    db, kit, engine, pg_admin_url
) -> None:
    """Handlers' events are published at once by the relay of the same process, which the
    consumer wakes after its commit; no NOTIFY is sent for them (it is for other processes)."""
    spy = await kit.spy_queue(str(EventType.PRODUCT_UPDATED_V1))
    produced: list[uuid.UUID] = []

    async def handler(session, envelope, payload: OrderCancelledV1) -> None:
        event = await db.outbox.enqueue(
            session, EventType.PRODUCT_UPDATED_V1, (p := snapshot()), subject=p.id
        )
        produced.append(event.id)

    notifications: list[str] = []
    listener = await asyncpg.connect(pg_admin_url.replace("postgresql+asyncpg", "postgresql"))
    channel = notify_channel(db.outbox_table)
    await listener.add_listener(
        channel, lambda _conn, _pid, name, _payload: notifications.append(name)
    )
    relay = relay_for(db, kit, engine, poll_interval=30)  # only a wake-up can be quick
    consumer = EventConsumer(
        amqp_url=kit.amqp_url,
        sessionmaker=db.sessions,
        inbox=db.inbox_table,
        topology=kit.topology(),
        handlers={str(EventType.ORDER_CANCELLED_V1): handler},
    )
    try:
        async with kit.running(relay, consumer):
            await asyncio.sleep(0.3)  # the relay's first pass is done: it waits
            exchange = await kit.channel.get_exchange(kit.exchange)
            order_id = uuid.uuid4()
            cancelled = OrderCancelledV1(order_id=order_id)
            await exchange.publish(
                to_message(
                    Envelope(
                        id=uuid.uuid4(),
                        source="/orders",
                        type=str(EventType.ORDER_CANCELLED_V1),
                        subject=str(order_id),
                        time=datetime.now(UTC),
                        data=cancelled.to_event_data(),
                    )
                ),
                routing_key=str(EventType.ORDER_CANCELLED_V1),
            )
            await kit.wait_until(lambda: _published_all(db, engine, produced), within=5)
        assert [m.message_id for m in await kit.drain(spy)] == [str(i) for i in produced]
        assert notifications == []
        # Outside a consumer the outbox still notifies (an API's relay is elsewhere).
        await enqueue(db)
        await asyncio.sleep(0.2)
        assert notifications == [channel]
    finally:
        await listener.close()


async def _published_all(db, engine: AsyncEngine, ids: list[uuid.UUID]) -> bool:
    stored = await rows(db, engine)
    return bool(ids) and all(stored[i].published_at is not None for i in ids)


async def test_a_row_committed_late_during_a_drain_is_published_once_the_drain_ends(
    db, kit, engine
) -> None:
    """While draining, a pass resumes after the last full batch (the rows just sent are dead
    index entries at the front); that is a shortcut, not a high-water mark: the pass after a
    short batch starts from the oldest unsent row again."""
    spy = await kit.spy_queue()
    relay = relay_for(db, kit, engine, batch_size=5, poll_interval=60)
    try:
        async with db.sessions() as slow:
            await slow.begin()
            late = await db.outbox.enqueue(
                slow, EventType.PRODUCT_UPDATED_V1, (p := snapshot()), subject=p.id
            )
            backlog = await enqueue(db, 12)
            assert await relay.publish_pending_once() == 5  # full: the next one resumes
            await slow.commit()
        drained = [await relay.publish_pending_once() for _ in range(4)]
    finally:
        await relay.close()
    assert drained == [5, 2, 1, 0]  # resumed past the late row, then found it
    stored = await rows(db, engine)
    assert stored[late.id].seq < stored[backlog[0]].seq
    assert all(r.published_at is not None for r in stored.values())
    assert len(await kit.drain(spy)) == 13

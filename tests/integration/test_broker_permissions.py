"""Each service's broker user (k8s/components/rabbitmq-users) on a real RabbitMQ: it may
publish only its own events on shop.events, and its consumer and relay work with exactly
the rights the prod objects give it.

The regexes are read from the prod objects themselves and applied with rabbitmqctl to a
vhost and users of this test's own (deleted afterwards), so the objects and the test
cannot drift apart.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest
import yaml
from sqlalchemy import MetaData, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from shop_common.events import (
    EventType,
    OrderCancelledV1,
    ProductSnapshotV1,
    StockLineV1,
    StockReleasedV1,
)
from shop_common.messaging import (
    DEFAULT_EXCHANGE,
    ConsumerTopology,
    Envelope,
    EventConsumer,
    Outbox,
    OutboxRelay,
    PermanentError,
    ensure_topology,
    inbox_table,
    outbox_table,
    replay_parked,
    to_message,
)

pytestmark = pytest.mark.integration

USERS = Path(__file__).resolve().parents[2] / "k8s/components/rabbitmq-users/users.yaml"
SERVICES = ("catalog", "orders")
# An event each service consumes (published by the other one) and one it publishes.
CONSUMES = {"catalog": EventType.ORDER_CANCELLED_V1, "orders": EventType.STOCK_RELEASED_V1}
PUBLISHES = {"catalog": EventType.PRODUCT_UPDATED_V1, "orders": EventType.ORDER_CANCELLED_V1}


@dataclass(frozen=True)
class Rights:
    configure: str
    write: str
    read: str
    topic_exchange: str
    topic_write: str
    topic_read: str


def prod_rights() -> dict[str, Rights]:
    """Each service's Permission and TopicPermission as the prod overlay declares them."""
    docs = list(yaml.safe_load_all(USERS.read_text()))
    rights = {}
    for service in SERVICES:
        [permission] = [
            d["spec"]
            for d in docs
            if d["kind"] == "Permission" and d["metadata"]["name"] == service
        ]
        [topic] = [
            d["spec"]
            for d in docs
            if d["kind"] == "TopicPermission" and d["metadata"]["name"] == service
        ]
        assert permission["userReference"]["name"] == topic["userReference"]["name"] == service
        rights[service] = Rights(
            **permission["permissions"],
            topic_exchange=topic["permissions"]["exchange"],
            topic_write=topic["permissions"]["write"],
            topic_read=topic["permissions"]["read"],
        )
    return rights


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def broker_users() -> Iterator[dict[str, str]]:
    """A vhost of this module's own with one user per service holding the prod rights;
    yields each service's AMQP URL. Users and vhost are deleted afterwards."""
    suffix = uuid.uuid4().hex[:10]
    vhost = f"shop_t_perm_{suffix}"
    users = {service: f"{service}_t_{suffix}" for service in SERVICES}
    passwords = {service: secrets.token_hex(16) for service in SERVICES}
    _rabbitmqctl("add_vhost", vhost)
    try:
        for service, rights in prod_rights().items():
            user = users[service]
            _rabbitmqctl("add_user", user, passwords[service])
            _rabbitmqctl(
                "set_permissions", "-p", vhost, user, rights.configure, rights.write, rights.read
            )
            _rabbitmqctl(
                "set_topic_permissions",
                "-p",
                vhost,
                user,
                rights.topic_exchange,
                rights.topic_write,
                rights.topic_read,
            )
        yield {
            service: f"amqp://{users[service]}:{passwords[service]}@127.0.0.1:5672/{vhost}"
            for service in SERVICES
        }
    finally:
        for user in users.values():
            subprocess.run(["rabbitmqctl", "-q", "delete_user", user], capture_output=True)
        _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
async def schema(pg_admin_url: str) -> AsyncIterator[tuple[AsyncEngine, MetaData]]:
    """A throwaway schema with an outbox and an inbox (the broker is what is under test)."""
    name = f"perm_{uuid.uuid4().hex[:10]}"
    engine = create_async_engine(pg_admin_url, pool_size=5)
    metadata = MetaData(schema=name)
    outbox_table(metadata)
    inbox_table(metadata)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{name}"'))
        await conn.run_sync(metadata.create_all)
    try:
        yield engine, metadata
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        await engine.dispose()


def envelope(event_type: EventType, payload: Any, subject: uuid.UUID) -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        source="/" + event_type.split(".")[0],
        type=event_type,
        subject=str(subject),
        time=datetime.now(UTC),
        data=payload.to_event_data(),
    )


def consumed_event(service: str, marker: str | None = None) -> Envelope:
    order_id = uuid.uuid4()
    if service == "catalog":
        payload: Any = OrderCancelledV1(order_id=order_id, reason=marker)
    else:
        line = StockLineV1(product_id=uuid.uuid4(), quantity=1)
        payload = StockReleasedV1(order_id=order_id, lines=(line,))
    return envelope(CONSUMES[service], payload, order_id)


def published_payload(service: str) -> Any:
    if service == "catalog":
        return ProductSnapshotV1(
            id=uuid.uuid4(),
            sku="SKU",
            name="Mug",
            description="",
            price_cents=100,
            currency="EUR",
            active=True,
            version=1,
            updated_at=datetime.now(UTC),
        )
    return OrderCancelledV1(order_id=uuid.uuid4())


async def publish(url: str, event: Envelope, routing_key: str | None = None) -> object:
    """Publish as the user of `url` on shop.events, with confirms; returns the broker's answer."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=False)
        exchange = await channel.declare_exchange(
            DEFAULT_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        return await exchange.publish(to_message(event), routing_key=routing_key or event.type)
    finally:
        await connection.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_user_publishes_its_own_events_and_no_others(
    service: str, broker_users: dict[str, str]
) -> None:
    other = next(s for s in SERVICES if s != service)
    # The other service's queue is bound to this service's type: the publish is routed.
    await ensure_topology(
        broker_users[other], ConsumerTopology(service=other), [PUBLISHES[service]]
    )
    own = envelope(PUBLISHES[service], published_payload(service), uuid.uuid4())
    assert isinstance(await publish(broker_users[service], own), aiormq.spec.Basic.Ack)
    # The other service's type, even with the right source header: refused by the broker.
    forged = envelope(PUBLISHES[other], published_payload(other), uuid.uuid4())
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="access to topic"):
        await publish(broker_users[service], forged)
    # ... and under a routing key that is neither's.
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
        await publish(broker_users[service], own, routing_key="audit.anything.v1")


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_user_cannot_touch_the_other_services_queues(
    service: str, broker_users: dict[str, str]
) -> None:
    other = next(s for s in SERVICES if s != service)
    await ensure_topology(broker_users[other], ConsumerTopology(service=other), [CONSUMES[other]])
    connection = await aio_pika.connect(broker_users[service])
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{other}.events")  # a passive declare is allowed
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await queue.get(fail=False)
    finally:
        await connection.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_services_consumer_and_relay_work_under_its_own_user(
    service: str, broker_users: dict[str, str], schema: tuple[AsyncEngine, MetaData]
) -> None:
    """Declaring the topology, consuming, retrying through its DLX, parking, replaying,
    KEDA's queue-depth probe, and publishing its outbox: all with the service's rights."""
    engine, metadata = schema
    url, other = broker_users[service], next(s for s in SERVICES if s != service)
    outbox_t, inbox_t = (
        metadata.tables[f"{metadata.schema}.outbox"],
        metadata.tables[f"{metadata.schema}.inbox"],
    )
    flaky, poison, fine = (consumed_event(service) for _ in range(3))
    attempts: dict[uuid.UUID, int] = {}
    handled: set[uuid.UUID] = set()
    replayed = False

    async def handle(session: Any, event: Envelope, payload: Any) -> None:
        attempts[event.id] = attempts.get(event.id, 0) + 1
        if event.id == poison.id and not replayed:
            raise PermanentError("parked until the replay")
        # Twice: a batch that fails is applied again one by one, so a single failure might
        # never leave the consumer; the second one is retried through the DLX for sure.
        if event.id == flaky.id and attempts[event.id] <= 2:
            raise RuntimeError("retried through the DLX")
        handled.add(event.id)

    topology = ConsumerTopology(service=service, retry_delays=(0.05,), max_retries=3)
    consumer = EventConsumer(
        amqp_url=url,
        sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
        inbox=inbox_t,
        topology=topology,
        # Like the services' own consumers, it takes every type routed to it: the other
        # tests' events too (they publish this service's and the other's types).
        handlers={PUBLISHES[other]: _ignore, CONSUMES[service]: handle},
        prefetch=5,
    )
    # The other service's queue is there, so this service's events are routable.
    await ensure_topology(
        broker_users[other], ConsumerTopology(service=other), [PUBLISHES[service]]
    )
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    try:
        await asyncio.wait_for(consumer.ready.wait(), 15)
        for event in (flaky, poison, fine):
            await publish(broker_users[other], event)
        await _until(lambda: _true({flaky.id, fine.id} <= handled), "retried and plain events")
        await _until(lambda: _parked(url, topology, 1), "the poison parked")
        replayed = True
        replayed = await replay_parked(url, topology)
        assert [r.outcome.value for r in replayed.results] == ["replayed"]
        await _until(lambda: _true(poison.id in handled), "the replayed event")
        assert await _queue_depth(url, topology.queue) == 0  # what KEDA's scaler asks
    finally:
        stop.set()
        await asyncio.wait_for(running, 20)

    outbox = Outbox(outbox_t, service=service)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session, session.begin():
        payload = published_payload(service)
        event = await outbox.enqueue(session, PUBLISHES[service], payload, subject=uuid.uuid4())
    relay = OutboxRelay(engine=engine, table=outbox_t, amqp_url=url)
    try:
        assert await relay.publish_pending_once() == 1
    finally:
        await relay.close()
    async with engine.connect() as conn:
        sent = await conn.scalar(select(outbox_t.c.published_at).where(outbox_t.c.id == event.id))
    assert sent is not None


async def _ignore(session: Any, event: Envelope, payload: Any) -> None:
    pass


async def _until(predicate: Callable[[], Awaitable[bool]], what: str, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _true(value: bool) -> bool:
    return value


async def _queue_depth(url: str, name: str) -> int:
    connection = await aio_pika.connect(url)
    try:
        queue = await (await connection.channel()).get_queue(name)  # a passive declare
        count = queue.declaration_result.message_count
        return int(count or 0)
    finally:
        await connection.close()


async def _parked(url: str, topology: ConsumerTopology, count: int) -> bool:
    return await _queue_depth(url, topology.parking_queue) >= count

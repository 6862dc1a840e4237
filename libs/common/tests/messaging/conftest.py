"""Fixtures for the messaging tests: a schema per test, unique broker names, a spy queue."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from sqlalchemy import Column, Integer, MetaData, Table, Text, Uuid, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shop_common.messaging import (
    ConsumerTopology,
    EventConsumer,
    Outbox,
    declare_events_exchange,
    inbox_table,
    outbox_table,
)
from shop_common.worker import Component


@dataclass
class ServiceDb:
    """What a service hands to the messaging library: its schema's tables and sessions."""

    schema: str
    metadata: MetaData
    outbox_table: Table
    inbox_table: Table
    effects: Table
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox


@pytest.fixture(scope="session")
async def engine(pg_admin_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        pg_admin_url,
        pool_size=20,
        connect_args={"server_settings": {"application_name": "messaging-tests"}},
    )
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[ServiceDb]:
    schema = f"svc_{uuid.uuid4().hex[:10]}"
    metadata = MetaData(schema=schema)
    outbox_t = outbox_table(metadata)
    inbox_t = inbox_table(metadata)
    # A handler's effect; deliberately no unique constraint, so a double effect would show.
    effects = Table(
        "effects",
        metadata,
        Column("n", Integer, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False),
        Column("note", Text, nullable=True),
    )
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    yield ServiceDb(
        schema=schema,
        metadata=metadata,
        outbox_table=outbox_t,
        inbox_table=inbox_t,
        effects=effects,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        outbox=Outbox(outbox_t, service="catalog"),
    )
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def names() -> str:
    """A unique prefix for this test's exchange and service names."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def amqp(amqp_url: str) -> AsyncIterator[AbstractConnection]:
    connection = await aio_pika.connect(amqp_url)
    yield connection
    await connection.close()


@pytest.fixture
async def channel(amqp: AbstractConnection) -> AbstractChannel:
    return await amqp.channel(publisher_confirms=True, on_return_raises=True)


class Kit:
    """Helpers for the tests (pytest's importlib mode lets tests reach them only as a fixture)."""

    def __init__(self, amqp_url: str, names: str, channel: AbstractChannel) -> None:
        self.amqp_url = amqp_url
        self.exchange = f"{names}.events"
        self.names = names
        self.channel = channel
        self._topologies: list[ConsumerTopology] = []

    def topology(self, **options: Any) -> ConsumerTopology:
        """This test's consumer topology; its queues and exchanges are deleted afterwards.

        `service` defaults to the test's prefix (give a second consumer another one)."""
        topology = ConsumerTopology(**{"service": self.names, "exchange": self.exchange, **options})
        self._topologies.append(topology)
        return topology

    async def cleanup(self) -> None:
        connection = await aio_pika.connect(self.amqp_url)  # ours may have been closed
        try:
            channel = await connection.channel()
            for t in self._topologies:
                retries = {t.retry_queue(n) for n in range(len(t.retry_delays))}
                for queue in (t.queue, t.parking_queue, *retries):
                    await channel.queue_delete(queue)
                await channel.exchange_delete(t.dead_letter_exchange)
            await channel.exchange_delete(self.exchange)
        finally:
            await connection.close()

    async def spy_queue(self, key: str = "#") -> AbstractQueue:
        """A throwaway queue bound to the test's exchange that records what is published."""
        ex = await declare_events_exchange(self.channel, self.exchange)
        queue = await self.channel.declare_queue(f"spy.{uuid.uuid4().hex[:8]}", exclusive=True)
        await queue.bind(ex, key)
        return queue

    @staticmethod
    async def drain(queue: AbstractQueue, *, idle: float = 0.3) -> list[AbstractIncomingMessage]:
        """Everything currently in `queue` (acked), waiting `idle` s after the last message."""
        got: list[AbstractIncomingMessage] = []
        deadline = time.monotonic() + idle
        while time.monotonic() < deadline:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.02)
                continue
            await message.ack()
            got.append(message)
            deadline = time.monotonic() + idle
        return got

    @staticmethod
    async def wait_until(
        predicate: Callable[[], Awaitable[bool]], *, within: float = 15.0, what: str = "it"
    ) -> None:
        deadline = time.monotonic() + within
        while not await predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    @staticmethod
    @contextlib.asynccontextmanager
    async def running(
        *components: Component, wait_ready: bool = True
    ) -> AsyncIterator[asyncio.Event]:
        """Run components' `run(stop)` in the background; stop them gracefully on exit."""
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop)) for c in components]
        try:
            for c in components:
                if wait_ready and isinstance(c, EventConsumer):
                    await asyncio.wait_for(c.ready.wait(), 15)
            yield stop
        finally:
            stop.set()
            done, pending = await asyncio.wait(tasks, timeout=20)
            for task in pending:
                task.cancel()
            assert not pending, "a component did not stop"
            for task in done:
                task.result()


@pytest.fixture
async def kit(amqp_url: str, names: str, channel: AbstractChannel) -> AsyncIterator[Kit]:
    kit = Kit(amqp_url, names, channel)
    yield kit
    await kit.cleanup()

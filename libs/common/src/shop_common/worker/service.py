"""A service's worker process: outbox relay, event consumer and the probe/metrics endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from functools import partial

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.db import create_engine, create_sessionmaker, ping
from shop_common.messaging.consumer import EventConsumer, Handler
from shop_common.messaging.relay import OutboxRelay
from shop_common.messaging.retention import RetentionSweeper
from shop_common.messaging.topology import ConsumerTopology
from shop_common.settings import ServiceSettings
from shop_common.worker.http import WorkerHttp
from shop_common.worker.periodic import Periodic
from shop_common.worker.runner import Component, Worker

PREFETCH = 10
RETENTION_INTERVAL_SECONDS = 3600.0
ExtraComponents = Callable[[async_sessionmaker[AsyncSession]], Sequence[Component]]


async def run_service_worker(
    *,
    service: str,
    settings: ServiceSettings,
    outbox: Table,
    inbox: Table,
    handlers: Mapping[str, Handler],
    extra: ExtraComponents | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or until `stop` is set, when given: tests)."""
    engine = create_engine(
        settings.database_url,
        schema=settings.db_schema,
        application_name=f"{service}-worker",
        # Every in-flight delivery holds a connection, the relay holds one for LISTEN and one
        # to publish, and readiness pings need one: never make handlers queue for the pool.
        pool_size=PREFETCH + 3,
        max_overflow=5,
    )
    sessions = create_sessionmaker(engine)
    amqp_url = settings.amqp_url.get_secret_value()
    consumer = EventConsumer(
        amqp_url=amqp_url,
        sessionmaker=sessions,
        inbox=inbox,
        topology=ConsumerTopology(service=service, exchange=settings.exchange),
        handlers=handlers,
        prefetch=PREFETCH,
    )
    relay = OutboxRelay(engine=engine, table=outbox, amqp_url=amqp_url, exchange=settings.exchange)
    http = WorkerHttp(
        host=settings.host,
        port=settings.worker_port,
        checks={"database": partial(ping, engine), "consumer": partial(_subscribed, consumer)},
    )
    retention = RetentionSweeper(
        engine,
        outbox=outbox,
        inbox=inbox,
        outbox_for=timedelta(days=settings.outbox_retention_days),
        inbox_for=timedelta(days=settings.inbox_retention_days),
    )
    components: list[Component] = [
        relay,
        consumer,
        http,
        Periodic("retention", retention.sweep_once, interval=RETENTION_INTERVAL_SECONDS),
        *(extra(sessions) if extra else ()),
    ]
    try:
        await Worker(*components).run(stop, handle_signals=stop is None)
    finally:
        await engine.dispose()


async def _subscribed(consumer: EventConsumer) -> None:
    if not consumer.ready.is_set():
        raise RuntimeError("the consumer is not subscribed to its queue")

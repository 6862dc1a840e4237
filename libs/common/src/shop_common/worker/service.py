"""A service's worker process: outbox relay, event consumer and the probe/metrics endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.db import create_engine, create_sessionmaker
from shop_common.messaging.consumer import EventConsumer, Handler
from shop_common.messaging.relay import OutboxRelay
from shop_common.messaging.retention import RetentionSweeper
from shop_common.messaging.topology import ConsumerTopology
from shop_common.metrics import track_engine
from shop_common.settings import ServiceSettings
from shop_common.web import DatabaseProbe
from shop_common.worker.http import WorkerHttp
from shop_common.worker.periodic import Periodic
from shop_common.worker.runner import Component, Worker

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
        # Every delivery in hand holds a connection, and the relay holds one for LISTEN and
        # one to publish (the settings refuse a pool smaller than that); housekeeping takes
        # what is left. Readiness probes have a connection of their own.
        pool_size=settings.worker_db_pool_size,
        max_overflow=settings.worker_db_max_overflow,
    )
    sessions = create_sessionmaker(engine)
    untrack = track_engine(
        engine, capacity=settings.worker_db_pool_size + settings.worker_db_max_overflow
    )
    amqp_url = settings.amqp_url.get_secret_value()
    consumer = EventConsumer(
        amqp_url=amqp_url,
        sessionmaker=sessions,
        inbox=inbox,
        topology=ConsumerTopology(service=service, exchange=settings.exchange),
        handlers=handlers,
        prefetch=settings.worker_prefetch,
    )
    relay = OutboxRelay(engine=engine, table=outbox, amqp_url=amqp_url, exchange=settings.exchange)
    probe = DatabaseProbe(settings.database_url, application_name=f"{service}-worker-probe")
    # The broker through the connection the consumer already holds: subscribed means the
    # broker is reachable and our queue is there; no AMQP connection is opened per probe.
    http = WorkerHttp(
        host=settings.host,
        port=settings.worker_port,
        checks={"database": probe, "broker": lambda: _subscribed(consumer)},
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
        untrack()
        await probe.close()
        await engine.dispose()


async def _subscribed(consumer: EventConsumer) -> None:
    if not consumer.ready.is_set():
        raise RuntimeError("the consumer is not subscribed to its queue (broker unreachable?)")

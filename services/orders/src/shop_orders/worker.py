"""`orders-worker`: Orders' outbox relay, its consumer of Catalog's events, and housekeeping."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.observability import configure_logging
from shop_common.tracing import configure_tracing
from shop_common.worker import Component, Periodic, run_process, run_service_worker
from shop_orders.events.handlers import HANDLERS
from shop_orders.idempotency.service import purge_expired
from shop_orders.messaging import INBOX, OUTBOX
from shop_orders.orders import service as orders
from shop_orders.reconcile import reconcile
from shop_orders.settings import OrdersSettings

SERVICE = "orders"
# Batches per sweep: after a long outage the backlog is worked off over a few rounds.
MAX_SWEEP_BATCHES = 50
# How fresh the PENDING gauges are (one indexed count per round).
PENDING_COUNT_INTERVAL_SECONDS = 15.0
log = logging.getLogger(__name__)

PLACEMENTS_RESENT = Counter(
    "shop_saga_placements_resent_total",
    "Placements of PENDING orders sent to Catalog again because no answer came (ADR 0012).",
)
PENDING_GIVEN_UP = Counter(
    "shop_saga_pending_cancelled_total",
    "PENDING orders cancelled because Catalog answered later orders but not these for the "
    "whole deadline (ADR 0012).",
)


def housekeeping(sessions: async_sessionmaker[AsyncSession], settings: OrdersSettings) -> Periodic:
    """Every sweep interval: purge expired Idempotency-Keys, chase PENDING orders (ADR 0012)."""

    async def once() -> None:
        async with sessions() as session:
            while await purge_expired(session) > 0:
                pass
        resent = cancelled = 0
        for _ in range(MAX_SWEEP_BATCHES):
            async with sessions() as session:
                batch = await orders.chase_pending(session, settings)
            resent, cancelled = resent + batch.resent, cancelled + batch.cancelled
            if batch.looked_at < orders.SAGA_BATCH:
                break
        PLACEMENTS_RESENT.inc(resent)
        PENDING_GIVEN_UP.inc(cancelled)
        if resent:
            log.info("sent %d unanswered placements to Catalog again", resent)
        if cancelled:
            log.warning("cancelled %d PENDING orders Catalog never answered", cancelled)

    return Periodic("housekeeping", once, interval=settings.saga_sweep_interval_seconds)


async def _count_pending(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        await orders.count_pending(session)


async def run(settings: OrdersSettings, stop: asyncio.Event | None = None) -> None:
    def extra(sessions: async_sessionmaker[AsyncSession]) -> list[Component]:
        return [
            housekeeping(sessions, settings),
            Periodic(
                "pending count",
                partial(_count_pending, sessions),
                interval=PENDING_COUNT_INTERVAL_SECONDS,
            ),
            Periodic(
                "reconcile",
                partial(reconcile, sessions, settings),
                interval=settings.reconcile_interval_seconds,
            ),
        ]

    await run_service_worker(
        service=SERVICE,
        settings=settings,
        outbox=OUTBOX,
        inbox=INBOX,
        handlers=HANDLERS,
        extra=extra,
        stop=stop,
    )


def run_worker() -> None:
    settings = OrdersSettings()
    configure_logging(f"{SERVICE}-worker", settings.log_level)
    configure_tracing(f"{SERVICE}-worker")
    run_process(run(settings))

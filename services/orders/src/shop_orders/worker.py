"""`orders-worker`: Orders' outbox relay, its consumer of Catalog's events, and housekeeping."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.observability import configure_logging
from shop_common.worker import Component, Periodic, run_process, run_service_worker
from shop_orders.events.handlers import HANDLERS
from shop_orders.idempotency.service import purge_expired
from shop_orders.messaging import INBOX, OUTBOX
from shop_orders.orders.service import cancel_stale_pending
from shop_orders.settings import OrdersSettings

SERVICE = "orders"
HOUSEKEEPING_INTERVAL_SECONDS = 60.0
log = logging.getLogger(__name__)


def housekeeping(
    sessions: async_sessionmaker[AsyncSession], *, pending_timeout: timedelta
) -> Periodic:
    """Every minute: purge expired Idempotency-Keys, cancel orders stuck in PENDING."""

    async def once() -> None:
        async with sessions() as session:
            while await purge_expired(session) > 0:
                pass
            stuck = await cancel_stale_pending(session, older_than=pending_timeout)
        if stuck:
            log.warning("cancelled %d orders stuck in PENDING", stuck)

    return Periodic("housekeeping", once, interval=HOUSEKEEPING_INTERVAL_SECONDS)


async def run(settings: OrdersSettings, stop: asyncio.Event | None = None) -> None:
    def extra(sessions: async_sessionmaker[AsyncSession]) -> list[Component]:
        timeout = timedelta(seconds=settings.pending_timeout_seconds)
        return [housekeeping(sessions, pending_timeout=timeout)]

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
    run_process(run(settings))

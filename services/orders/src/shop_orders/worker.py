"""`orders-worker`: Orders' outbox relay, its consumer of Catalog's events, and key purging."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.messaging.service_worker import run_service_worker
from shop_common.messaging.worker import Component
from shop_common.observability import configure_logging
from shop_orders.events.handlers import HANDLERS
from shop_orders.idempotency.service import purge_expired
from shop_orders.messaging import INBOX, OUTBOX
from shop_orders.settings import OrdersSettings

SERVICE = "orders"
PURGE_INTERVAL_SECONDS = 300.0
log = logging.getLogger(__name__)


class ExpiredKeyPurger:
    """Deletes expired Idempotency-Keys in batches, every few minutes."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with self._sessions() as session:
                    while await purge_expired(session) > 0 and not stop.is_set():
                        pass
            except Exception as exc:  # a database hiccup: try again next round
                log.warning("purging expired idempotency keys failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=PURGE_INTERVAL_SECONDS)


def _extra(sessions: async_sessionmaker[AsyncSession]) -> list[Component]:
    return [ExpiredKeyPurger(sessions)]


async def run(settings: OrdersSettings, stop: asyncio.Event | None = None) -> None:
    await run_service_worker(
        service=SERVICE,
        settings=settings,
        outbox=OUTBOX,
        inbox=INBOX,
        handlers=HANDLERS,
        extra=_extra,
        stop=stop,
    )


def run_worker() -> None:
    settings = OrdersSettings()
    configure_logging(f"{SERVICE}-worker", settings.log_level)
    asyncio.run(run(settings))

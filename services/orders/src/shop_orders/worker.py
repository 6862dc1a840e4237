"""`orders-worker`: Orders' outbox relay, its consumer of Catalog's events, and housekeeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.messaging.service_worker import run_service_worker
from shop_common.messaging.worker import Component
from shop_common.observability import configure_logging
from shop_orders.events.handlers import HANDLERS
from shop_orders.idempotency.service import purge_expired
from shop_orders.messaging import INBOX, OUTBOX
from shop_orders.orders.service import cancel_stale_pending
from shop_orders.settings import OrdersSettings

SERVICE = "orders"
HOUSEKEEPING_INTERVAL_SECONDS = 60.0
log = logging.getLogger(__name__)


class Housekeeping:
    """Every few minutes: purge expired Idempotency-Keys, cancel orders stuck in PENDING."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, pending_timeout: timedelta
    ) -> None:
        self._sessions = sessions
        self._pending_timeout = pending_timeout

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with self._sessions() as session:
                    while await purge_expired(session) > 0 and not stop.is_set():
                        pass
                    stuck = await cancel_stale_pending(session, older_than=self._pending_timeout)
                    if stuck:
                        log.warning("cancelled %d orders stuck in PENDING", stuck)
            except Exception as exc:  # a database hiccup: try again next round
                log.warning("housekeeping failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=HOUSEKEEPING_INTERVAL_SECONDS)


async def run(settings: OrdersSettings, stop: asyncio.Event | None = None) -> None:
    def extra(sessions: async_sessionmaker[AsyncSession]) -> list[Component]:
        timeout = timedelta(seconds=settings.pending_timeout_seconds)
        return [Housekeeping(sessions, pending_timeout=timeout)]

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
    asyncio.run(run(settings))

"""`catalog-worker`: Catalog's outbox relay, its consumer of Orders' events, reconciliation."""

from __future__ import annotations

import asyncio
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_catalog.events.handlers import HANDLERS
from shop_catalog.messaging import INBOX, OUTBOX
from shop_catalog.reconcile import reconcile
from shop_catalog.settings import CatalogSettings
from shop_common.observability import configure_logging
from shop_common.tracing import configure_tracing
from shop_common.worker import Component, Periodic, run_process, run_service_worker

SERVICE = "catalog"


async def run(settings: CatalogSettings, stop: asyncio.Event | None = None) -> None:
    def extra(sessions: async_sessionmaker[AsyncSession]) -> list[Component]:
        return [
            Periodic(
                "reconcile",
                partial(reconcile, sessions),
                interval=settings.reconcile_interval_seconds,
            )
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
    settings = CatalogSettings()
    configure_logging(f"{SERVICE}-worker", settings.log_level)
    configure_tracing(f"{SERVICE}-worker")
    run_process(run(settings))

"""`catalog-worker`: Catalog's outbox relay and its consumer of Orders' events."""

from __future__ import annotations

from shop_catalog.events.handlers import HANDLERS
from shop_catalog.messaging import INBOX, OUTBOX
from shop_catalog.settings import CatalogSettings
from shop_common.observability import configure_logging
from shop_common.worker import run_process, run_service_worker

SERVICE = "catalog"


def run_worker() -> None:
    settings = CatalogSettings()
    configure_logging(f"{SERVICE}-worker", settings.log_level)
    run_process(
        run_service_worker(
            service=SERVICE, settings=settings, outbox=OUTBOX, inbox=INBOX, handlers=HANDLERS
        )
    )

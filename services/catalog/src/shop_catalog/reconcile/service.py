"""Catalog's reconciliation runs: each unit of work begins here (ADR 0010)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_catalog.products import repository as products
from shop_catalog.products.repository import StockMove
from shop_catalog.reconcile import repository as repo
from shop_catalog.settings import CatalogSettings
from shop_common.db import create_engine, create_sessionmaker
from shop_common.observability import configure_logging
from shop_common.worker import Finding, ReconcileReport, record_report

SERVICE = "catalog"
log = logging.getLogger(__name__)


async def reconcile(sessions: async_sessionmaker[AsyncSession]) -> ReconcileReport:
    async with sessions() as session, session.begin():
        drifts = await repo.stock_drift(session)
    repaired = 0
    for drift in drifts:
        if drift.counted > drift.held:
            repaired += await _give_back_unheld(sessions, drift.product_id)
        else:
            log.warning(
                "product %s: reservations hold %d units, stock_reserved says %d;"
                " left for a person to decide",
                drift.product_id,
                drift.held,
                drift.counted,
            )
    findings = (Finding("stock_reserved_mismatch", found=len(drifts), repaired=repaired),)
    return record_report(ReconcileReport(SERVICE, findings))


async def _give_back_unheld(sessions: async_sessionmaker[AsyncSession], product_id: UUID) -> int:
    """Move reserved units no reservation holds back to available, under the product's lock
    (re-checked there: a reservation may have committed since the first look)."""
    async with sessions() as session, session.begin():
        await products.lock_products(session, [product_id])
        now = await repo.stock_drift(session, [product_id])
        if not now or now[0].counted <= now[0].held:
            return 0
        unheld = now[0].counted - now[0].held
        await products.move_stock(
            session, [StockMove(product_id, available=unheld, reserved=-unheld)]
        )
    log.warning("product %s: %d reserved units no reservation held, given back", product_id, unheld)
    return 1


async def run_once(settings: CatalogSettings) -> ReconcileReport:
    """One reconciliation run on a connection of its own, for operators."""
    engine = create_engine(
        settings.database_url,
        schema=settings.db_schema,
        application_name=f"{SERVICE}-reconcile",
        pool_size=1,
        max_overflow=0,
    )
    try:
        return await reconcile(create_sessionmaker(engine))
    finally:
        await engine.dispose()


def main() -> None:
    """`catalog-reconcile`: one run, the report as JSON on stdout; exit status 1 when some
    drift is left for a person."""
    settings = CatalogSettings()
    configure_logging(f"{SERVICE}-reconcile", settings.log_level)
    report = asyncio.run(run_once(settings))
    print(json.dumps(report.as_dict()))  # noqa: T201  (the command's output)
    sys.exit(1 if report.unrepaired else 0)

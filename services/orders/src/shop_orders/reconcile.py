"""Orders' reconciliation (ADR 0012): drift Orders can see in its own data, repaired through
the normal idempotent events.

- `release_unacknowledged`: a cancelled order whose stock Catalog reported reserved and
  never reported released; its cancel is sent again (repaired).
- `pending_overdue`: an order PENDING for longer than the deadline; the sweeper gives up
  only once Catalog is seen answering later orders, so these wait on Catalog (reported).

The worker runs `reconcile` every `ORDERS_RECONCILE_INTERVAL_SECONDS`; an operator runs it
on demand with `run_once(settings)` (what `shop-ops reconcile` calls) or the
`orders-reconcile` command, which prints the report as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.db import create_engine, create_sessionmaker
from shop_common.observability import configure_logging
from shop_common.worker import Finding, ReconcileReport, record_report
from shop_orders.orders import service as orders
from shop_orders.settings import OrdersSettings

SERVICE = "orders"
# Batches per run: a backlog left by a long outage is worked off over several runs.
MAX_BATCHES = 50


async def reconcile(
    sessions: async_sessionmaker[AsyncSession], settings: OrdersSettings
) -> ReconcileReport:
    async with sessions() as session:
        overdue = await orders.count_overdue(session, settings)
    resent = 0
    for _ in range(MAX_BATCHES):
        async with sessions() as session:
            batch = await orders.chase_unreleased_cancels(session, settings)
        resent += batch.resent
        if batch.looked_at < orders.SAGA_BATCH:
            break
    findings = (
        # Counted before the batches ran, so an order cancelled meanwhile may be re-sent
        # without having been counted.
        Finding("release_unacknowledged", found=max(overdue.unreleased, resent), repaired=resent),
        Finding("pending_overdue", found=overdue.pending),
    )
    return record_report(ReconcileReport(SERVICE, findings))


async def run_once(settings: OrdersSettings) -> ReconcileReport:
    """One reconciliation run on a connection of its own, for operators."""
    engine = create_engine(
        settings.database_url,
        schema=settings.db_schema,
        application_name=f"{SERVICE}-reconcile",
        pool_size=1,
        max_overflow=0,
    )
    try:
        return await reconcile(create_sessionmaker(engine), settings)
    finally:
        await engine.dispose()


def main() -> None:
    """`orders-reconcile`: one run, the report as JSON on stdout; exit status 1 when some
    drift is left for a person."""
    settings = OrdersSettings()
    configure_logging(f"{SERVICE}-reconcile", settings.log_level)
    report = asyncio.run(run_once(settings))
    print(json.dumps(report.as_dict()))  # noqa: T201  (the command's output)
    sys.exit(1 if report.unrepaired else 0)

"""Reconciliation on demand (ADR 0012): `run_once` of each service finds the drift its own
data shows, repairs it through the normal idempotent events, reports the rest, and counts
both in the metrics. Real workers, PostgreSQL and RabbitMQ."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from shop_catalog import reconcile as catalog_reconcile
from shop_catalog.settings import CatalogSettings
from shop_common.worker import Finding
from shop_orders import reconcile as orders_reconcile
from shop_orders.settings import OrdersSettings
from tests.saga.conftest import Workers
from tests.saga.test_recovery import all_published, events_of, lose_everything_queued_for, place
from tests.saga.test_recovery import stock as stock_of
from tests.support.e2e import Shop, eventually

pytestmark = pytest.mark.integration


def counted(kind: str, outcome: str) -> float:
    labels = {"kind": kind, "outcome": outcome}
    return REGISTRY.get_sample_value("shop_reconcile_findings_total", labels) or 0.0


async def test_orders_sends_a_cancel_again_when_catalog_never_reported_the_release(
    shop: Shop,
    workers: Workers,
    sdb: asyncpg.Connection,
    saga_amqp_url: str,
    saga_orders_settings: OrdersSettings,
) -> None:
    product = await shop.new_product(stock_available=5)
    workers.start("catalog")
    workers.start("orders")
    order_id = await place(shop, product, 2)
    assert (await shop.final(order_id, within=15))["status"] == "CONFIRMED"
    await workers.stop("catalog")
    assert (await shop.cancel(order_id)).json()["status"] == "CANCELLED"
    await all_published(sdb, "orders", order_id)
    await workers.stop("orders")
    workers.start("catalog")  # releases the stock; its report waits in Orders' queue...
    await eventually(lambda: stock_of(shop, product), lambda s: s == (5, 0), within=15)
    await all_published(sdb, "catalog", order_id)
    await lose_everything_queued_for(saga_amqp_url, "orders")  # ...and is lost
    await sdb.execute(
        "UPDATE orders.outbox SET published_at = published_at - interval '10 minutes'"
        " WHERE subject = $1",
        order_id,
    )
    await sdb.execute(
        # Ten minutes on for the order too: its next look (set by the worker's last
        # reconciliation, one resend interval after the cancel left) is in the past.
        "UPDATE orders.orders SET updated_at = updated_at - interval '10 minutes',"
        " next_check_at = next_check_at - interval '10 minutes' WHERE id = $1",
        uuid.UUID(order_id),
    )
    repaired_before = counted("release_unacknowledged", "repaired")

    report = await orders_reconcile.run_once(saga_orders_settings)

    assert Finding("release_unacknowledged", found=1, repaired=1) in report.findings
    assert counted("release_unacknowledged", "repaired") == repaired_before + 1
    workers.start("orders")  # publishes the cancel again; Catalog reports the release again
    await eventually(
        lambda: sdb.fetchval(
            "SELECT stock_released_at IS NOT NULL FROM orders.orders WHERE id = $1",
            uuid.UUID(order_id),
        ),
        bool,
        within=15,
    )
    assert await stock_of(shop, product) == (5, 0)  # given back once
    releases = [t for t in await events_of(sdb, "catalog", order_id) if t.endswith("released.v1")]
    assert len(releases) == 2
    again = await orders_reconcile.run_once(saga_orders_settings)
    assert Finding("release_unacknowledged", found=0, repaired=0) in again.findings


async def test_catalog_gives_back_reserved_stock_nothing_holds_and_reports_the_opposite(
    shop: Shop, sdb: asyncpg.Connection, saga_catalog_settings: CatalogSettings
) -> None:
    leaked = await shop.new_product(stock_available=10)
    short = await shop.new_product(stock_available=10)
    # Three units reserved that no reservation holds (a bug, a hand-made fix gone wrong).
    await sdb.execute(
        "UPDATE catalog.products SET stock_available = stock_available - 3,"
        " stock_reserved = stock_reserved + 3 WHERE id = $1",
        uuid.UUID(leaked["id"]),
    )
    # A reservation holding two units the counter never moved.
    ghost = uuid.uuid4()
    lines = json.dumps([{"product_id": short["id"], "quantity": 2}])
    await sdb.execute(
        "INSERT INTO catalog.reservations (order_id, status, lines) VALUES ($1, 'RESERVED', $2)",
        ghost,
        lines,
    )
    try:
        report = await catalog_reconcile.run_once(saga_catalog_settings)
        again = await catalog_reconcile.run_once(saga_catalog_settings)
        after: dict[str, Any] = {p["id"]: await shop.product(p["id"]) for p in (leaked, short)}
    finally:
        await sdb.execute("DELETE FROM catalog.reservations WHERE order_id = $1", ghost)

    assert report.findings == (Finding("stock_reserved_mismatch", found=2, repaired=1),)
    assert again.findings == (Finding("stock_reserved_mismatch", found=1, repaired=0),)
    assert (after[leaked["id"]]["stock_available"], after[leaked["id"]]["stock_reserved"]) == (
        10,
        0,
    )
    assert (after[short["id"]]["stock_available"], after[short["id"]]["stock_reserved"]) == (
        10,
        0,
    )
    drift = REGISTRY.get_sample_value("shop_reconcile_drift", {"kind": "stock_reserved_mismatch"})
    assert drift == 1

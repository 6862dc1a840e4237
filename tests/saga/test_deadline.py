"""The deadline (ADR 0012) on real PostgreSQL: it cancels an order Catalog could answer and
did not, and never one Catalog could not have answered. One sweep of the housekeeping's
`chase_pending`, with default timings, over rows whose times are moved back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_orders.orders.service import chase_pending
from shop_orders.settings import OrdersSettings
from tests.saga.conftest import SagaDatabases
from tests.support import TEST_JWT_SECRET
from tests.support.e2e import Shop
from tests.support.sessions import role_sessions

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def defaults(saga_databases: SagaDatabases) -> OrdersSettings:
    """The production timings: re-send after 5 min, deadline 2 h."""
    return OrdersSettings(
        database_url=saga_databases.orders.url, jwt_secret=SecretStr(TEST_JWT_SECRET)
    )


@pytest.fixture(scope="module")
async def sessions(
    saga_databases: SagaDatabases,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    orders = saga_databases.orders
    async with role_sessions(orders.url, orders.schema, name="saga-deadline") as made:
        yield made


async def sweep(sessions: async_sessionmaker[AsyncSession], settings: OrdersSettings) -> None:
    async with sessions() as session:
        await chase_pending(session, settings)


async def placed_and_sent(shop: Shop, sdb: asyncpg.Connection, product: dict[str, Any]) -> str:
    """A PENDING order whose placement the broker has just confirmed."""
    placed = await shop.place((product["id"], 1))
    assert placed.status_code == 201, placed.text
    order_id: str = placed.json()["id"]
    await sdb.execute("UPDATE orders.outbox SET published_at = now() WHERE subject = $1", order_id)
    return order_id


async def order_row(sdb: asyncpg.Connection, order_id: str) -> dict[str, Any]:
    row = await sdb.fetchrow("SELECT * FROM orders.orders WHERE id = $1", uuid.UUID(order_id))
    assert row is not None
    return dict(row)


async def test_an_order_catalog_answered_past_for_the_whole_deadline_is_cancelled(
    shop: Shop,
    sdb: asyncpg.Connection,
    sessions: async_sessionmaker[AsyncSession],
    defaults: OrdersSettings,
) -> None:
    product = await shop.new_product(stock_available=50)
    ignored = await placed_and_sent(shop, sdb, product)
    # Catalog has been answering orders placed after this one for three hours (the clock
    # started then), and answered one placed after its latest copy ten minutes ago.
    await sdb.execute(
        "UPDATE orders.orders SET catalog_answering_since = now() - interval '3 hours'"
        " WHERE id = $1",
        uuid.UUID(ignored),
    )
    later = await placed_and_sent(shop, sdb, product)
    await sdb.execute(
        "UPDATE orders.orders SET status = 'CONFIRMED', updated_at = now() - interval '10 minutes'"
        " WHERE id = $1",
        uuid.UUID(later),
    )
    await sweep(sessions, defaults)
    order = await shop.order(ignored)
    assert (order["status"], order["status_reason"]) == (
        "CANCELLED",
        "Catalog did not answer within the deadline",
    )
    events = await sdb.fetch(
        "SELECT type FROM orders.outbox WHERE subject = $1 ORDER BY seq", ignored
    )
    assert [e["type"] for e in events] == ["orders.order.placed.v1", "orders.order.cancelled.v1"]


async def test_no_deadline_runs_while_catalog_answers_nothing_placed_after(
    shop: Shop,
    sdb: asyncpg.Connection,
    sessions: async_sessionmaker[AsyncSession],
    defaults: OrdersSettings,
) -> None:
    product = await shop.new_product(stock_available=50)
    # Accepted a day ago; its placement left the outbox only now (a day-long broker outage).
    waited = await placed_and_sent(shop, sdb, product)
    await sdb.execute(
        "UPDATE orders.orders SET created_at = now() - interval '1 day' WHERE id = $1",
        uuid.UUID(waited),
    )
    # The clock ran out before, but Catalog has answered nothing placed after its latest
    # copy (say its worker is down): still no cancel.
    stale = await placed_and_sent(shop, sdb, product)
    await sdb.execute(
        "UPDATE orders.orders SET catalog_answering_since = now() - interval '3 hours'"
        " WHERE id = $1",
        uuid.UUID(stale),
    )
    await sweep(sessions, defaults)
    for order_id in (waited, stale):
        assert (await shop.order(order_id))["status"] == "PENDING"
    assert (await order_row(sdb, waited))["catalog_answering_since"] is None

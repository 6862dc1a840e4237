"""The periodic queries use their indexes (ADR 0012): the PENDING sweep, the reconciler's
release check, the evidence query, and both retention DELETEs.

Each runs for real, as the service's role, over tables filled to a realistic shape (20,000
orders of which 40 PENDING, 20,000 inbox ids and published outbox rows of which an hour's
worth are past retention) and ANALYZEd in the same transaction; the plan PostgreSQL chose
for that very statement is captured with EXPLAIN just before it runs. Everything is rolled
back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from shop_catalog.messaging import INBOX as CATALOG_INBOX
from shop_common.messaging import delete_published, delete_received
from shop_orders.messaging import INBOX, OUTBOX
from shop_orders.orders import repository
from tests.saga.conftest import SagaDatabases

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def explained(engine: AsyncEngine) -> Iterator[list[str]]:
    """The plan of every statement the engine runs meanwhile, in order."""
    plans: list[str] = []

    def explain(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if not many and statement.lstrip().upper().startswith(("SELECT", "DELETE", "WITH")):
            cursor.execute(f"EXPLAIN {statement}", parameters)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))

    event.listen(engine.sync_engine, "before_cursor_execute", explain)
    try:
        yield plans
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", explain)


@contextlib.asynccontextmanager
async def filled(url: str, schema: str, *statements: str) -> AsyncIterator[AsyncSession]:
    """A session of the service's role inside a transaction that fills and ANALYZEs its
    tables, rolled back at the end."""
    engine = create_async_engine(
        url, connect_args={"server_settings": {"search_path": schema}}, pool_size=1
    )
    try:
        async with AsyncSession(engine) as session, session.begin():
            for statement in statements:
                await session.execute(text(statement))
            yield session
            await session.rollback()
    finally:
        await engine.dispose()


# Retention runs hourly, so each run finds about an hour's worth of rows past the limit.
INBOX_ROWS = """
    INSERT INTO inbox (event_id, type, source, received_at)
    SELECT gen_random_uuid(), 'catalog.stock.reserved.v1', '/catalog',
           now() - g * (interval '30 days 1 hour' / 20000)
    FROM generate_series(1, 20000) AS g
"""
OUTBOX_ROWS = """
    INSERT INTO outbox (id, source, type, subject, payload, created_at, published_at)
    SELECT gen_random_uuid(), '/orders', 'orders.order.confirmed.v1', g::text, '{}',
           now() - g * (interval '7 days 1 hour' / 20000),
           now() - g * (interval '7 days 1 hour' / 20000)
    FROM generate_series(1, 20000) AS g
"""
ORDER_ROWS = """
    INSERT INTO orders (id, customer_id, status, total_cents, currency, pricing_source,
                        created_at, updated_at, next_check_at, stock_reserved_at,
                        stock_released_at)
    SELECT gen_random_uuid(), 'bulk-' || (g % 300),
           CASE WHEN g % 500 = 0 THEN 'PENDING' WHEN g % 7 = 0 THEN 'CANCELLED'
                ELSE 'CONFIRMED' END,
           100, 'EUR', 'catalog',
           now() - g * interval '1 minute', now() - g * interval '1 minute',
           now() - g * interval '1 minute',
           now() - g * interval '1 minute',
           CASE WHEN g % 7 = 0 AND g % 1000 <> 7 THEN now() END
    FROM generate_series(1, 20000) AS g
"""


async def test_the_saga_queries_and_orders_retention_use_their_indexes(
    saga_databases: SagaDatabases,
) -> None:
    orders = saga_databases.orders
    async with filled(
        orders.url,
        orders.schema,
        ORDER_ROWS,
        INBOX_ROWS,
        OUTBOX_ROWS,
        "ANALYZE orders",
        "ANALYZE inbox",
        "ANALYZE outbox",
    ) as session:
        engine = session.bind
        assert isinstance(engine, AsyncEngine)
        day_ago = await session.scalar(text("SELECT now() - interval '1 day'"))
        connection = await session.connection()
        queries = {
            "sweep": repository.lock_due_pending(session, OUTBOX, limit=100),
            "release": repository.lock_unreleased_cancels(session, OUTBOX, limit=100),
            "evidence": repository.newest_answered(
                session, created_after=day_ago, answered_before=timedelta(minutes=1)
            ),
            "inbox": delete_received(connection, INBOX, timedelta(days=30)),
            "outbox": delete_published(connection, OUTBOX, timedelta(days=7)),
        }
        plan: dict[str, str] = {}
        for name, query in queries.items():
            with explained(engine) as plans:
                await query
            plan[name] = plans[0]  # the query itself (the sweep then loads lines)

    assert "ix_orders_pending_due" in plan["sweep"], plan["sweep"]
    assert "ix_orders_release_unacknowledged" in plan["release"], plan["release"]
    assert "ix_orders_created_at_id" in plan["evidence"], plan["evidence"]
    assert "ix_inbox_received_at" in plan["inbox"], plan["inbox"]
    assert "ix_outbox_published_at" in plan["outbox"], plan["outbox"]


async def test_catalogs_inbox_retention_uses_its_index(saga_databases: SagaDatabases) -> None:
    catalog = saga_databases.catalog
    async with filled(catalog.url, catalog.schema, INBOX_ROWS, "ANALYZE inbox") as session:
        engine = session.bind
        assert isinstance(engine, AsyncEngine)
        with explained(engine) as plans:
            await delete_received(await session.connection(), CATALOG_INBOX, timedelta(days=30))
    assert "ix_inbox_received_at" in plans[-1], plans[-1]

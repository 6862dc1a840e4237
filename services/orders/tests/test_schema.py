"""The models and the migrated schema agree on every CHECK constraint (status among them).

The constraints are generated from the enums in the models; the migrations are history.
PostgreSQL normalises a constraint's text, so comparing its own rendering of both proves
they accept and refuse exactly the same rows.
"""

from __future__ import annotations

import re
import uuid

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from shop_orders import messaging  # noqa: F401  (registers the outbox and inbox tables)
from shop_orders.db import Base
from shop_orders.idempotency import models as idempotency_models  # noqa: F401
from shop_orders.orders.models import OrderStatus, PricingSource
from shop_orders.replica import models as replica_models  # noqa: F401
from shop_orders.settings import SCHEMA
from tests.support import ServiceDb

pytestmark = pytest.mark.integration

CHECKS = """
    SELECT t.relname AS table_name, c.conname AS name, pg_get_constraintdef(c.oid) AS definition
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = $1 AND c.contype = 'c'
"""


async def check_constraints(db: asyncpg.Connection, schema: str) -> dict[tuple[str, str], str]:
    return {(r["table_name"], r["name"]): r["definition"] for r in await db.fetch(CHECKS, schema)}


def allowed_values(definition: str) -> set[str]:
    return set(re.findall(r"'([^']*)'", definition))


async def test_the_models_check_constraints_are_the_migrated_ones(
    orders_db: ServiceDb, pg_admin_url: str, db: asyncpg.Connection
) -> None:
    probe = f"probe_{uuid.uuid4().hex[:10]}"
    await db.execute(f'CREATE SCHEMA "{probe}"')
    engine = create_async_engine(pg_admin_url)
    try:
        async with engine.begin() as conn:
            translated = await conn.execution_options(schema_translate_map={SCHEMA: probe})
            await translated.run_sync(Base.metadata.create_all)
        from_models = await check_constraints(db, probe)
        migrated = await check_constraints(db, orders_db.schema)
    finally:
        await engine.dispose()
        await db.execute(f'DROP SCHEMA "{probe}" CASCADE')
    assert from_models == migrated
    assert ("orders", "ck_orders_status_known") in migrated


async def test_the_migrated_status_check_allows_exactly_the_enums_values(
    orders_db: ServiceDb, db: asyncpg.Connection
) -> None:
    checks = await check_constraints(db, orders_db.schema)
    assert allowed_values(checks["orders", "ck_orders_status_known"]) == set(OrderStatus)
    assert allowed_values(checks["orders", "ck_orders_pricing_source_known"]) == set(PricingSource)

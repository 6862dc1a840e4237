"""DriverPool over real PostgreSQL: schema-scoped statements, dropped connections, outages."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shop_common.db import DatabaseUnavailable, DriverPool

pytestmark = pytest.mark.integration


@pytest.fixture
async def schema(db: asyncpg.Connection) -> AsyncIterator[str]:
    """A schema of its own with one table, and a role that logs in and sees only it."""
    name = f"drv_{uuid.uuid4().hex[:8]}"
    await db.execute(f'CREATE ROLE "{name}" LOGIN')
    await db.execute(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"')
    await db.execute(f'CREATE TABLE "{name}".things (id int PRIMARY KEY, label text)')
    await db.execute(f"INSERT INTO \"{name}\".things VALUES (1, 'one'), (2, 'two')")
    await db.execute(f'ALTER TABLE "{name}".things OWNER TO "{name}"')
    try:
        yield name
    finally:
        await db.execute(f'DROP SCHEMA "{name}" CASCADE')
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
        )
        await db.execute(f'DROP ROLE "{name}"')


@pytest.fixture
async def pool(schema: str, pg_admin_url: str) -> AsyncIterator[DriverPool]:
    host_and_db = pg_admin_url.split("@", 1)[1]
    driver = DriverPool(
        f"postgresql+asyncpg://{schema}@{host_and_db}",
        schema=schema,
        application_name=f"test-{schema}",
        size=2,
    )
    await driver.open()
    try:
        yield driver
    finally:
        await driver.close()


async def test_statements_see_the_service_schema(pool: DriverPool) -> None:
    row = await pool.fetchrow("SELECT label FROM things WHERE id = $1", 2)
    assert row is not None
    assert row["label"] == "two"
    assert await pool.fetchrow("SELECT label FROM things WHERE id = $1", 3) is None
    assert [r["id"] for r in await pool.fetch("SELECT id FROM things ORDER BY id")] == [1, 2]


async def test_a_dropped_connection_is_replaced_and_the_statement_runs(
    pool: DriverPool, schema: str, db: asyncpg.Connection
) -> None:
    await pool.fetchrow("SELECT 1")  # open a connection, then have the server kill it
    killed = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1",
        schema,
    )
    assert killed >= 1
    row = await pool.fetchrow("SELECT label FROM things WHERE id = $1", 1)
    assert row is not None
    assert row["label"] == "one"


async def test_an_unreachable_database_is_database_unavailable(
    pool: DriverPool, schema: str, db: asyncpg.Connection
) -> None:
    await db.execute(f'ALTER ROLE "{schema}" NOLOGIN')
    await db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", schema
    )
    with pytest.raises(DatabaseUnavailable) as caught:
        await pool.fetchrow("SELECT 1")
    assert caught.value.headers == {"Retry-After": "1"}
    await db.execute(f'ALTER ROLE "{schema}" LOGIN')
    assert dict(await pool.fetchrow("SELECT 1 AS one") or {}) == {"one": 1}


async def test_errors_that_are_not_outages_are_raised_as_they_are(pool: DriverPool) -> None:
    with pytest.raises(asyncpg.UndefinedTableError):
        await pool.fetch("SELECT * FROM no_such_table")

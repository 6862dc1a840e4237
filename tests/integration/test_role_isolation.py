"""Data ownership is enforced by PostgreSQL: a service role reaches its own schema only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from tests.support import ServiceDb

pytestmark = pytest.mark.integration

SERVICES = ["catalog", "orders"]


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="module")
async def admin_conn(pg_admin_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(_dsn(pg_admin_url))
    await conn.execute(
        """
        CREATE SCHEMA IF NOT EXISTS intruder_target;
        CREATE TABLE IF NOT EXISTS intruder_target.secrets (v text);
        CREATE TABLE IF NOT EXISTS public.leftover (v text);
        """
    )
    try:
        yield conn
    finally:
        await conn.execute("DROP SCHEMA intruder_target CASCADE; DROP TABLE public.leftover")
        await conn.close()


@pytest.fixture(params=SERVICES)
async def service_conn(
    request: pytest.FixtureRequest,
    provision_service: Callable[[str], ServiceDb],
    admin_conn: asyncpg.Connection,
) -> AsyncIterator[tuple[ServiceDb, asyncpg.Connection]]:
    db = provision_service(request.param)
    conn = await asyncpg.connect(_dsn(db.url))
    try:
        yield db, conn
    finally:
        await conn.close()


async def test_service_role_works_in_its_own_schema(
    service_conn: tuple[ServiceDb, asyncpg.Connection],
) -> None:
    db, conn = service_conn
    assert await conn.fetchval("SELECT current_schema()") == db.schema
    await conn.execute("CREATE TABLE probe_own (v int); INSERT INTO probe_own VALUES (1)")
    assert await conn.fetchval("SELECT count(*) FROM probe_own") == 1
    await conn.execute("DROP TABLE probe_own")


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM intruder_target.secrets",
        "INSERT INTO intruder_target.secrets VALUES ('x')",
        "CREATE TABLE intruder_target.planted (v int)",
        "SELECT * FROM public.leftover",
        "INSERT INTO public.leftover VALUES ('x')",
        "CREATE TABLE public.planted (v int)",
        "CREATE SCHEMA planted",
        "CREATE TEMP TABLE planted (v int)",
    ],
)
async def test_service_role_cannot_touch_other_schemas_or_public(
    service_conn: tuple[ServiceDb, asyncpg.Connection], statement: str
) -> None:
    _, conn = service_conn
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute(statement)


async def test_service_role_is_not_privileged(
    service_conn: tuple[ServiceDb, asyncpg.Connection],
) -> None:
    _, conn = service_conn
    row = await conn.fetchrow(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles "
        "WHERE rolname = current_user"
    )
    assert row is not None
    assert tuple(row) == (False, False, False, False)


async def test_provisioning_is_idempotent(
    service_conn: tuple[ServiceDb, asyncpg.Connection], pg_admin_url: str
) -> None:
    from shop_common.db.provision import ServiceDatabase, provision

    db, conn = service_conn
    target = ServiceDatabase(database=db.database, schema=db.schema, role=db.role)
    await provision(_dsn(pg_admin_url), target)
    await provision(_dsn(pg_admin_url), target)
    assert await conn.fetchval("SELECT count(*) FROM alembic_version") == 1


@pytest.mark.parametrize(("service", "other"), [("catalog", "orders"), ("orders", "catalog")])
async def test_neither_service_can_touch_the_others_schema(
    provision_service: Callable[[str], ServiceDb], service: str, other: str
) -> None:
    mine, theirs = provision_service(service), provision_service(other)
    conn = await asyncpg.connect(_dsn(mine.url))
    try:
        for statement in [
            f"SELECT * FROM {theirs.schema}.alembic_version",
            f"SELECT * FROM {theirs.schema}.outbox",
            f"DELETE FROM {theirs.schema}.alembic_version",
            f"CREATE TABLE {theirs.schema}.planted (v int)",
        ]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()

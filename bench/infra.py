"""The bench's own PostgreSQL database, roles and RabbitMQ vhost: made fresh, dropped after.

Names are fixed (`shop_bench`, roles `<service>_bench`) so a run that was killed outright is
cleaned up by the next one; a lock file keeps two bench runs from sharing them. None of
them is used by `make up` (database `shop`) or by the tests (random `shop_t_*` names).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg

from shop_common.db.migrations import upgrade
from shop_common.db.provision import ServiceDatabase, provision

ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_BASE = os.environ.get("BENCH_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
DATABASE = "shop_bench"
VHOST = "shop_bench"
SERVICES = ("catalog", "orders")
# What the stack may open at saturation: four processes at the default pool (10) plus
# overflow (10), the baseline's 10, and the runner's own few.
CONNECTIONS_NEEDED = 4 * (10 + 10) + 10 + 3
LOCK_FILE = Path("/tmp/shop-bench.lock")  # noqa: S108 - a lock, not data


@dataclass(frozen=True)
class Infra:
    """What the processes are given: one URL per service role, the vhost's AMQP URL."""

    database_urls: dict[str, str]  # service -> postgresql+asyncpg://<role>@host/shop_bench
    amqp_url: str
    admin_url: str  # superuser DSN of shop_bench (asyncpg), for seeding checks and results

    def role(self, service: str) -> str:
        return f"{service}_bench"


def _pg_host() -> str:
    return ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]


def admin_dsn(database: str) -> str:
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{database}"


def acquire_lock() -> IO[str]:
    """Exclusive for the life of the process (the OS drops it if we die)."""
    handle = LOCK_FILE.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SystemExit(f"another bench run holds {LOCK_FILE}; wait for it to finish") from None
    return handle


def _rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(  # noqa: S603
        ["rabbitmqctl", "-q", *args],  # noqa: S607
        check=check,
        capture_output=True,
        timeout=60,
    )


async def check_reachable() -> None:
    """Fail early, saying what to start, when PostgreSQL or RabbitMQ is not there."""
    try:
        conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
        await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise SystemExit(
            f"PostgreSQL is not reachable as a superuser at {ADMIN_DSN} ({exc!r}); start it or "
            "set BENCH_PG_ADMIN_DSN"
        ) from None
    try:
        await asyncio.to_thread(_rabbitmqctl, "status")
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(
            f"RabbitMQ is not reachable through rabbitmqctl ({exc!r}); the bench creates its "
            "own vhost with it. Start RabbitMQ (`rabbitmq-server -detached`)."
        ) from None


async def connection_headroom() -> dict[str, int]:
    """PostgreSQL connections: the server's limit and what other databases hold right now."""
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        limit = int(await conn.fetchval("SHOW max_connections"))
        reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
        others = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND datname IS DISTINCT FROM $1",
            DATABASE,
        )
    finally:
        await conn.close()
    return {
        "max_connections": limit,
        "for_service_roles": limit - reserved,
        "held_by_others": int(others),
        "needed": CONNECTIONS_NEEDED,
    }


async def _drop(conn: asyncpg.Connection) -> None:
    await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    for service in SERVICES:
        # Dropping the database took the role's objects and grants in it with it.
        await conn.execute(f'DROP ROLE IF EXISTS "{service}_bench"')


async def create() -> Infra:
    """Drop whatever a previous run left, then provision and migrate both services afresh."""
    await destroy()
    await asyncio.to_thread(_rabbitmqctl, "add_vhost", VHOST)
    await asyncio.to_thread(_rabbitmqctl, "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    urls: dict[str, str] = {}
    for service in SERVICES:
        role = f"{service}_bench"
        await provision(ADMIN_DSN, ServiceDatabase(database=DATABASE, schema=service, role=role))
        urls[service] = f"postgresql+asyncpg://{role}@{_pg_host()}/{DATABASE}"
        # Alembic runs its own event loop: give it a thread of its own.
        await asyncio.to_thread(upgrade, f"shop_{service}", urls[service])
    return Infra(
        database_urls=urls,
        amqp_url=f"{AMQP_BASE}/{VHOST}",
        admin_url=admin_dsn(DATABASE),
    )


async def destroy() -> None:
    """Drop the database, its roles and the vhost (what `create` makes)."""
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await _drop(conn)
    finally:
        await conn.close()
    await asyncio.to_thread(_rabbitmqctl, "delete_vhost", VHOST, check=False)

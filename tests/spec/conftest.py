"""Both APIs as real processes, on a database and a vhost of their own, for schemathesis.

The fuzzer creates thousands of rows and keys; they stay out of the database the other
suites share, and are dropped with it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from shop_common.db.migrations import upgrade
from shop_common.db.provision import DEFAULT_ADMIN_DSN, ServiceDatabase, provision
from tests.support import TEST_JWT_SECRET
from tests.support.processes import ServiceProcess, free_port

# The same variables as the root conftest's fixtures read.
PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", DEFAULT_ADMIN_DSN)
AMQP_BASE = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")


# Products that Orders' fuzzing may order (their ids are a dictionary in schemathesis.toml).
SEEDED_PRODUCTS = [uuid.UUID(f"5eed0000-0000-4000-8000-00000000000{n}") for n in (1, 2, 3)]
UPSERT_PRODUCT = (
    "INSERT INTO catalog.products (id, sku, name, description, price_cents, currency,"
    " stock_available, stock_reserved, active, version, created_at, updated_at)"
    " VALUES ($1, $2, 'Seeded for schemathesis', '', 1000, 'EUR', 1000000, 0, true, 1,"
    " now(), now())"
    " ON CONFLICT (id) DO UPDATE SET active = true, version = catalog.products.version + 1"
)


@dataclass(frozen=True)
class SpecStack:
    catalog_url: str
    orders_url: str
    admin_token: str
    customer_token: str
    database: str

    def seed_products(self) -> None:
        """(Re)activate SEEDED_PRODUCTS: Catalog's own fuzzing may have deactivated them."""

        async def seed() -> None:
            conn = await asyncpg.connect(_dsn(self.database))
            try:
                rows = [(p, f"SEED-{n}") for n, p in enumerate(SEEDED_PRODUCTS)]
                await conn.executemany(UPSERT_PRODUCT, rows)
            finally:
                await conn.close()

        asyncio.run(seed())


def _dsn(database: str) -> str:
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{database}"


def _admin_sql(*statements: str, database: str = "postgres") -> None:
    async def run() -> None:
        conn = await asyncpg.connect(_dsn(database))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def spec_stack(make_token: Callable[..., str]) -> Iterator[SpecStack]:
    suffix = uuid.uuid4().hex[:10]
    database, vhost = f"shop_spec_{suffix}", f"shop_spec_{suffix}"
    roles = {service: f"{service}_spec_{suffix}" for service in ("catalog", "orders")}
    processes: list[ServiceProcess] = []
    _admin_sql(f'CREATE DATABASE "{database}"')
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        urls: dict[str, str] = {}
        for service, role in roles.items():
            target = ServiceDatabase(database=database, schema=service, role=role)
            asyncio.run(provision(PG_ADMIN_DSN, target))
            host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
            urls[service] = f"postgresql+asyncpg://{role}@{host}/{database}"
            upgrade(f"shop_{service}", urls[service])
        ports = {service: free_port() for service in roles}
        catalog_url = f"http://127.0.0.1:{ports['catalog']}"
        orders_url = f"http://127.0.0.1:{ports['orders']}"
        for service, url in (("catalog", catalog_url), ("orders", orders_url)):
            prefix = service.upper()
            env = {
                f"{prefix}_DATABASE_URL": urls[service],
                f"{prefix}_AMQP_URL": f"{AMQP_BASE}/{vhost}",
                f"{prefix}_JWT_SECRET": TEST_JWT_SECRET,
                f"{prefix}_PORT": str(ports[service]),
                f"{prefix}_LOG_LEVEL": "WARNING",
                f"{prefix}_ACCESS_LOG": "false",
            }
            if service == "orders":
                env["ORDERS_CATALOG_URL"] = catalog_url
            process = ServiceProcess(f"{service}-api", env, f"{url}/readyz")
            processes.append(process)
            process.start(timeout=60)
        yield SpecStack(
            catalog_url=catalog_url,
            orders_url=orders_url,
            admin_token=make_token("spec-admin", "admin"),
            customer_token=make_token("spec-customer", "customer"),
            database=database,
        )
    finally:
        for process in processes:
            process.stop(timeout=10)
            process.close()
        _admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        _admin_sql(*(f'DROP ROLE IF EXISTS "{role}"' for role in roles.values()))
        _rabbitmqctl("delete_vhost", vhost)

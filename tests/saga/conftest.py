"""A shop of its own for the saga's recovery tests (ADR 0012): both services' APIs in-process
and their real workers started and stopped by each test, on a database and a RabbitMQ vhost
no other suite uses.

Isolation matters here more than anywhere: the sweeper judges an order by the answers
Catalog gave to the orders placed after it, so another suite's orders (or another suite's
worker consuming `orders.events`) would be evidence these tests did not arrange.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from shop_catalog import worker as catalog_worker
from shop_catalog.main import create_app as create_catalog_app
from shop_catalog.settings import CatalogSettings
from shop_common.db.migrations import upgrade
from shop_common.db.provision import DEFAULT_ADMIN_DSN, ServiceDatabase, provision
from shop_orders import worker as orders_worker
from shop_orders.main import create_app as create_orders_app
from shop_orders.settings import OrdersSettings
from tests.support import TEST_JWT_SECRET, ServiceDb
from tests.support.e2e import Shop, Stack

# A port nothing listens on: a worker given this URL runs as during a broker outage.
BROKER_DOWN = "amqp://guest:guest@127.0.0.1:1/"


def _admin_dsn() -> str:
    return os.environ.get("TEST_PG_ADMIN_DSN", DEFAULT_ADMIN_DSN)


async def _admin(sql: str, database: str | None = None) -> None:
    dsn = _admin_dsn()
    if database is not None:
        dsn = f"{dsn.rsplit('/', 1)[0]}/{database}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass(frozen=True)
class SagaDatabases:
    name: str
    catalog: ServiceDb
    orders: ServiceDb


@pytest.fixture(scope="session")
def saga_databases() -> Iterator[SagaDatabases]:
    """A database of its own with both services provisioned and migrated."""
    name = f"shop_saga_{uuid.uuid4().hex[:10]}"
    suffix = uuid.uuid4().hex[:8]
    made: list[ServiceDb] = []

    def make(service: str) -> ServiceDb:
        role = f"{service}_svc_{suffix}"
        asyncio.run(
            provision(_admin_dsn(), ServiceDatabase(database=name, schema=service, role=role))
        )
        host = _admin_dsn().split("@", 1)[1].rsplit("/", 1)[0]
        url = f"postgresql+asyncpg://{role}@{host}/{name}"
        upgrade(f"shop_{service}", url)
        db = ServiceDb(url=url, role=role, schema=service, database=name)
        made.append(db)
        return db

    # A thread of its own: the session's event loop may already be running.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _admin(f'CREATE DATABASE "{name}"')).result()
        try:
            yield SagaDatabases(
                name=name,
                catalog=pool.submit(make, "catalog").result(),
                orders=pool.submit(make, "orders").result(),
            )
        finally:
            drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            pool.submit(asyncio.run, _admin(drop)).result()
            for db in made:
                pool.submit(asyncio.run, _admin(f'DROP ROLE IF EXISTS "{db.role}"')).result()


@pytest.fixture(scope="session")
def saga_amqp_url() -> Iterator[str]:
    base = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
    vhost = f"shop_saga_{uuid.uuid4().hex[:10]}"

    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    ctl("add_vhost", vhost)
    try:
        ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{base}/{vhost}"
    finally:
        ctl("delete_vhost", vhost)


# Fast timings for tests: a sweep every 0.2 s, a copy unanswered for 1 s is sent again (the
# deadline cannot be shortened below the retry ladder; tests shift timestamps instead).
FAST_ORDERS = {
    "saga_sweep_interval_seconds": 0.2,
    "saga_resend_after_seconds": 1,
    "saga_resend_max_seconds": 4,
    "reconcile_interval_seconds": 0.5,
}


@pytest.fixture(scope="session")
def saga_orders_settings(saga_databases: SagaDatabases, saga_amqp_url: str) -> OrdersSettings:
    return OrdersSettings(
        database_url=saga_databases.orders.url,
        amqp_url=SecretStr(saga_amqp_url),
        jwt_secret=SecretStr(TEST_JWT_SECRET),
        catalog_url="http://catalog.test",
        worker_port=0,
        db_pool_size=2,
        db_max_overflow=4,
        **FAST_ORDERS,
    )


@pytest.fixture(scope="session")
def saga_catalog_settings(saga_databases: SagaDatabases, saga_amqp_url: str) -> CatalogSettings:
    return CatalogSettings(
        database_url=saga_databases.catalog.url,
        amqp_url=SecretStr(saga_amqp_url),
        jwt_secret=SecretStr(TEST_JWT_SECRET),
        worker_port=0,
        db_pool_size=2,
        db_max_overflow=4,
        reconcile_interval_seconds=0.5,
    )


@pytest.fixture(scope="session")
async def saga_http(
    saga_orders_settings: OrdersSettings, saga_catalog_settings: CatalogSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """One client for both in-process APIs (`http://catalog.test`, `http://orders.test`)."""
    catalog_app = create_catalog_app(saga_catalog_settings)
    catalog = httpx.ASGITransport(app=catalog_app)
    orders_app = create_orders_app(saga_orders_settings, catalog_transport=catalog)
    async with LifespanManager(catalog_app), LifespanManager(orders_app):
        mounts = {
            "http://catalog.test": catalog,
            "http://orders.test": httpx.ASGITransport(app=orders_app),
        }
        async with httpx.AsyncClient(mounts=mounts, timeout=10) as client:
            yield client


@pytest.fixture
def shop(saga_http: httpx.AsyncClient, saga_amqp_url: str, make_token: Callable[..., str]) -> Shop:
    stack = Stack(
        processes={},
        catalog_url="http://catalog.test",
        orders_url="http://orders.test",
        admin={"Authorization": f"Bearer {make_token('saga-admin', 'admin')}"},
        customer={"Authorization": f"Bearer {make_token('saga-alice', 'customer')}"},
        vhost=saga_amqp_url.rsplit("/", 1)[1],
    )
    return Shop(saga_http, stack)


@pytest.fixture
async def sdb(saga_databases: SagaDatabases) -> AsyncIterator[asyncpg.Connection]:
    """Superuser connection to the saga database, for arranging and inspecting state."""
    dsn = f"{_admin_dsn().rsplit('/', 1)[0]}/{saga_databases.name}"
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


class Workers:
    """Both services' real workers as tasks of the test's event loop; `start` one with
    `broker=BROKER_DOWN` to run it through a broker outage."""

    def __init__(self, orders: OrdersSettings, catalog: CatalogSettings) -> None:
        self.settings: dict[str, Any] = {"orders": orders, "catalog": catalog}
        self.running: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}

    def start(self, service: str, *, broker: str | None = None, **overrides: Any) -> None:
        assert service not in self.running, f"{service} worker already running"
        settings = self.settings[service]
        if broker is not None:
            overrides["amqp_url"] = SecretStr(broker)
        if overrides:
            settings = settings.model_copy(update=overrides)
        stop = asyncio.Event()
        run = orders_worker.run if service == "orders" else catalog_worker.run
        self.running[service] = (asyncio.create_task(run(settings, stop)), stop)

    async def stop(self, service: str) -> None:
        task, stop = self.running.pop(service)
        stop.set()
        await asyncio.wait_for(task, timeout=30)

    async def stop_all(self) -> None:
        for service in list(self.running):
            with contextlib.suppress(Exception):
                await self.stop(service)


@pytest.fixture
async def workers(
    saga_orders_settings: OrdersSettings, saga_catalog_settings: CatalogSettings
) -> AsyncIterator[Workers]:
    running = Workers(saga_orders_settings, saga_catalog_settings)
    try:
        yield running
    finally:
        await running.stop_all()

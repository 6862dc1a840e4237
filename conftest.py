"""Fixtures shared by every test: throwaway PostgreSQL databases and RabbitMQ vhosts.

Each test session gets its own database and vhost with random names, so tests pass whether
or not a `make up` stack is running, and two runs never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from shop_catalog.main import create_app as create_catalog_app
from shop_catalog.settings import CatalogSettings
from shop_common.auth import issue_dev_token
from shop_common.db.migrations import upgrade
from shop_common.db.provision import DEFAULT_ADMIN_DSN, ServiceDatabase, provision
from tests.support import TEST_JWT_SECRET, ServiceDb, tracing

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", DEFAULT_ADMIN_DSN)
AMQP_BASE = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")

# APIs keep the connections they open, and the test stacks live for the whole session while
# every suite shares the server's ~100 slots: a smaller ceiling (in-process apps and the
# processes the tests start, which inherit the environment).
for _service in ("CATALOG", "ORDERS"):
    os.environ.setdefault(f"{_service}_DB_POOL_SIZE", "4")
    os.environ.setdefault(f"{_service}_DB_MAX_OVERFLOW", "8")
    # The API processes tests start serve Prometheus on a free port, never on 9201/9202
    # where a `make up` stack or another test run may be listening.
    os.environ.setdefault(f"{_service}_METRICS_PORT", "0")


# As in a service process with no exporter configured (shop_common.tracing); spans a
# test's sampled traceparent starts are kept in tests.support.tracing.SPANS.
tracing.install()


@pytest.fixture
def spans() -> Iterator[tracing.InMemorySpanExporter]:
    """What the test traced (start it with a sampled traceparent); empty at the start."""
    tracing.SPANS.clear()
    yield tracing.SPANS
    tracing.SPANS.clear()


def _admin(sql: str, database: str | None = None) -> None:
    dsn = PG_ADMIN_DSN if database is None else f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{database}"

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, empty database; yields its name. Dropped (with FORCE) after the session."""
    name = unique_name("shop_t")
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_admin_url(pg_database: str) -> str:
    """Superuser URL (asyncpg dialect for SQLAlchemy) of the session's fresh database."""
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{pg_database}"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """URL of a fresh RabbitMQ vhost (guest has full rights); deleted after the session."""
    vhost = unique_name("shop_t")
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{AMQP_BASE}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def provision_service(pg_database: str) -> Iterator[Callable[[str], ServiceDb]]:
    """Provision role + schema for a service (role name made unique) and run its migrations."""
    suffix = uuid.uuid4().hex[:8]
    made: dict[str, ServiceDb] = {}

    def make(service: str) -> ServiceDb:
        # A thread of its own: callers may be inside the test event loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(_make, service).result()

    def _make(service: str) -> ServiceDb:
        if service not in made:
            role = f"{service}_svc_{suffix}"
            asyncio.run(
                provision(
                    PG_ADMIN_DSN, ServiceDatabase(database=pg_database, schema=service, role=role)
                )
            )
            host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
            url = f"postgresql+asyncpg://{role}@{host}/{pg_database}"
            upgrade(f"shop_{service}", url)
            made[service] = ServiceDb(url=url, role=role, schema=service, database=pg_database)
        return made[service]

    try:
        yield make
    finally:
        for db in made.values():
            _admin(f'DROP OWNED BY "{db.role}" CASCADE', database=pg_database)
            _admin(f'DROP ROLE IF EXISTS "{db.role}"')


@pytest.fixture(scope="session")
def make_token() -> Callable[..., str]:
    """`make_token("alice", "customer")`: a valid dev token signed with the test secret."""

    def make(subject: str, *roles: str) -> str:
        return issue_dev_token(subject=subject, roles=list(roles), secret=TEST_JWT_SECRET)

    return make


@pytest.fixture(scope="session")
def admin(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('root', 'admin')}"}


@pytest.fixture(scope="session")
def customer(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('alice', 'customer')}"}


@pytest.fixture(scope="session")
def catalog_db(provision_service: Callable[[str], ServiceDb]) -> ServiceDb:
    return provision_service("catalog")


@pytest.fixture(scope="session")
def catalog_settings(catalog_db: ServiceDb, amqp_url: str) -> CatalogSettings:
    return CatalogSettings(
        database_url=catalog_db.url,
        amqp_url=SecretStr(amqp_url),
        jwt_secret=SecretStr(TEST_JWT_SECRET),
    )


@pytest.fixture(scope="session")
async def catalog_app(catalog_settings: CatalogSettings) -> AsyncIterator[FastAPI]:
    """The real Catalog app (real PostgreSQL), in-process for speed."""
    app = create_catalog_app(catalog_settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def catalog_client(catalog_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=catalog_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as c:
        yield c


@pytest.fixture
async def db(pg_admin_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Superuser connection to the test database, for arranging and inspecting state.

    The services never use it: they connect as their own roles.
    """
    conn = await asyncpg.connect(pg_admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        yield conn
    finally:
        await conn.close()

"""An API's `/readyz` means "can serve": its database, on a connection of its own, and never
the broker (real PostgreSQL; the broker URL points where nothing listens)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from shop_common.settings import ServiceSettings
from shop_common.web import SESSIONMAKER, DatabaseProbe, api_resources, create_service_app
from tests.support.processes import free_port

DEAD_BROKER = f"amqp://guest:guest@127.0.0.1:{free_port()}/"


def settings(database_url: str) -> ServiceSettings:
    return ServiceSettings(
        port=1,
        worker_port=0,
        metrics_port=0,
        database_url=database_url,
        db_schema="public",
        amqp_url=SecretStr(DEAD_BROKER),
        jwt_secret=SecretStr("x" * 32),
        # One pooled connection: a test can take it away from requests.
        db_pool_size=1,
        db_max_overflow=0,
    )


@asynccontextmanager
async def running_api(database_url: str, service: str) -> AsyncIterator[httpx.AsyncClient]:
    config = settings(database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with api_resources(app, config, service):
            yield

    app = create_service_app(title="Ready", settings=config, routers=[], lifespan=lifespan)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def engine_of(client: httpx.AsyncClient) -> AsyncEngine:
    bind = SESSIONMAKER.get(client.app).kw["bind"]  # type: ignore[attr-defined]
    assert isinstance(bind, AsyncEngine)
    return bind


async def test_readiness_checks_the_database_and_not_the_broker(pg_admin_url: str) -> None:
    async with running_api(pg_admin_url, f"ready-{uuid.uuid4().hex[:8]}") as client:
        response = await client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


async def test_readiness_answers_while_every_pooled_connection_is_busy(pg_admin_url: str) -> None:
    async with running_api(pg_admin_url, f"busy-{uuid.uuid4().hex[:8]}") as client:
        pooled = engine_of(client).connect()
        async with pooled:  # the pool's only connection, held
            started = time.monotonic()
            response = await client.get("/readyz")
            elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert elapsed < 1.0


async def test_the_probe_reconnects_after_its_connection_was_terminated(
    pg_admin_url: str, db: asyncpg.Connection
) -> None:
    service = f"drop-{uuid.uuid4().hex[:8]}"
    backend = "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
    async with running_api(pg_admin_url, service) as client:
        assert (await client.get("/readyz")).status_code == 200
        first = await db.fetchval(backend, f"{service}-api-probe")
        assert first is not None
        # The same connection serves the next probes.
        assert (await client.get("/readyz")).status_code == 200
        assert await db.fetchval(backend, f"{service}-api-probe") == first

        await db.execute("SELECT pg_terminate_backend($1)", first)
        response = await client.get("/readyz")
        second = await db.fetchval(backend, f"{service}-api-probe")

    assert response.status_code == 200, response.text
    assert second is not None
    assert second != first


async def test_an_unreachable_database_is_not_ready_within_the_probe_timeout() -> None:
    dead = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none"
    async with running_api(dead, "dead") as client:
        started = time.monotonic()
        response = await client.get("/readyz")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "unavailable"}}
    assert elapsed < 2.0  # Kubernetes waits timeoutSeconds: 2


async def test_probe_close_is_idempotent(pg_admin_url: str) -> None:
    probe = DatabaseProbe(pg_admin_url, application_name="probe-close")
    await probe()
    await probe.close()
    await probe.close()
    await probe()  # usable again: opens a new connection
    await probe.close()

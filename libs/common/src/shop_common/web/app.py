"""The FastAPI app factory every service API uses: one place for the cross-cutting parts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware.cors import CORSMiddleware

from shop_common.auth.dependencies import TOKEN_VERIFIER
from shop_common.auth.tokens import TokenVerifier
from shop_common.db import DriverPool, create_engine, create_sessionmaker
from shop_common.metrics import track_engine, track_pool
from shop_common.settings import ServiceSettings
from shop_common.state import StateKey
from shop_common.web.docs import install_docs
from shop_common.web.edge import PROBES, EdgeMiddleware
from shop_common.web.health import READINESS_CHECKS, DatabaseProbe, health_router
from shop_common.web.hot import add_routes
from shop_common.web.links import PUBLIC_BASE_URL
from shop_common.web.problems import install_problem_handlers
from shop_common.web.sessions import DRIVER_POOL, SESSIONMAKER

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
SETTINGS = StateKey[ServiceSettings]("settings")
_PROBLEM = {"content": {"application/problem+json": {}}, "description": "Problem details"}
# What a browser on an allowed origin may send and read (only when CORS is configured).
CORS_METHODS = ("GET", "POST", "PATCH", "DELETE")
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "X-Request-ID",
    "traceparent",
)
CORS_RESPONSE_HEADERS = ("ETag", "Location", "Retry-After", "X-Request-ID", "Idempotent-Replayed")


def create_service_app(
    *,
    title: str,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    lifespan: Lifespan,
    version: str = "1.0.0",
) -> FastAPI:
    """Problem details, auth, the edge (request ids, shedding, body limit, metrics) and
    health around `routers`. Prometheus is not here: `serve` puts it on the metrics port.

    `lifespan` must set `READINESS_CHECKS` (name -> async check); `api_resources` does.
    """
    app = FastAPI(
        title=title,
        version=version,
        lifespan=lifespan,
        responses={422: _PROBLEM, 400: _PROBLEM},
        openapi_url="/openapi.json" if settings.openapi_enabled else None,
        # install_docs serves /docs from assets shipped with shop_common (no CDN); no ReDoc.
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry: the server span of every request (continuing the
        # caller's traceparent), once `configure_tracing` installed a provider. Metrics are
        # Prometheus' (the edge); no spans per dependency and serialization; probes untraced.
        telemetry={
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "exclude": _untraced,
        },
    )
    SETTINGS.set(app, settings)
    TOKEN_VERIFIER.set(app, TokenVerifier(settings))
    READINESS_CHECKS.set(app, {})
    PUBLIC_BASE_URL.set(app, str(settings.public_base_url or "").rstrip("/"))
    install_problem_handlers(app)
    if settings.cors_allow_origins:  # off unless configured: inside the edge, so counted
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allow_origins),
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_RESPONSE_HEADERS,
            max_age=600,
        )
    # The one middleware of ours (added last: outermost of the app's own).
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_in_flight=settings.max_in_flight,
        retry_after_seconds=settings.shed_retry_after_seconds,
    )
    # Routes are matched in order: the API's first (every request tries them), then the
    # probes (every few seconds), then the docs.
    for router in [*routers, health_router()]:
        add_routes(app, router)
    install_docs(app, enabled=settings.docs_enabled)
    return app


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in PROBES


@asynccontextmanager
async def api_resources(
    app: FastAPI, settings: ServiceSettings, service: str
) -> AsyncIterator[AsyncEngine]:
    """For an API's lifespan: the engine, the session factory and the readiness check (its
    database, on a connection of its own; an API never uses the broker)."""
    engine = create_engine(
        settings.database_url,
        schema=settings.db_schema,
        application_name=f"{service}-api",
        # The ceiling is pool + overflow, as configured, but connections once opened are kept:
        # under load QueuePool closed every returned overflow connection and the next request
        # opened a new one (TLS probe, auth, statements prepared again), 12% of catalog-api.
        pool_size=settings.db_pool_size + settings.db_max_overflow,
        max_overflow=0,
        pre_ping=True,
    )
    SESSIONMAKER.set(app, create_sessionmaker(engine))
    driver = None
    if settings.db_driver_pool_size:
        driver = DriverPool(
            settings.database_url,
            schema=settings.db_schema,
            application_name=f"{service}-api-driver",
            size=settings.db_driver_pool_size,
        )
        await driver.open()
        DRIVER_POOL.set(app, driver)
    probe = DatabaseProbe(settings.database_url, application_name=f"{service}-api-probe")
    READINESS_CHECKS.set(app, {"database": probe})
    untrack = [track_engine(engine, capacity=settings.db_pool_size + settings.db_max_overflow)]
    if driver is not None:
        pool = driver
        untrack.append(
            track_pool("driver", in_use=lambda: pool.in_use, capacity=settings.db_driver_pool_size)
        )
    try:
        yield engine
    finally:
        for stop_tracking in untrack:
            stop_tracking()
        await probe.close()
        if driver is not None:
            await driver.close()
        await engine.dispose()

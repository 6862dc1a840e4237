"""The FastAPI app factory every service API uses: one place for the cross-cutting parts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

import uvicorn
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from shop_common.auth.dependencies import TOKEN_VERIFIER
from shop_common.auth.tokens import TokenVerifier
from shop_common.db import DriverPool, create_engine, create_sessionmaker, ping
from shop_common.observability import RequestIdMiddleware, configure_logging
from shop_common.runtime import freeze_startup_objects
from shop_common.settings import ServiceSettings
from shop_common.state import StateKey
from shop_common.web.body_limit import BodySizeLimit
from shop_common.web.docs import install_docs
from shop_common.web.health import READINESS_CHECKS, broker_check, health_router
from shop_common.web.metrics import RedMetrics, metrics_endpoint
from shop_common.web.problems import install_problem_handlers
from shop_common.web.sessions import DRIVER_POOL, SESSIONMAKER

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
SETTINGS = StateKey[ServiceSettings]("settings")
_PROBLEM = {"content": {"application/problem+json": {}}, "description": "Problem details"}


def create_service_app(
    *,
    title: str,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    lifespan: Lifespan,
    version: str = "1.0.0",
) -> FastAPI:
    """Problem details, auth, body limit, request ids, metrics and health around `routers`.

    `lifespan` must set `READINESS_CHECKS` (name -> async check); `api_resources` does.
    """
    app = FastAPI(
        title=title,
        version=version,
        lifespan=lifespan,
        responses={422: _PROBLEM, 400: _PROBLEM},
        # install_docs serves /docs from assets shipped with shop_common (no CDN); no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    SETTINGS.set(app, settings)
    TOKEN_VERIFIER.set(app, TokenVerifier(settings))
    READINESS_CHECKS.set(app, {})
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(RedMetrics)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.include_router(health_router())
    for router in routers:
        app.include_router(router)
    install_docs(app, enabled=settings.docs_enabled)  # after the API's routes: matched last
    return app


@asynccontextmanager
async def api_resources(
    app: FastAPI, settings: ServiceSettings, service: str
) -> AsyncIterator[AsyncEngine]:
    """For an API's lifespan: the engine, the session factory and the readiness checks."""
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
    READINESS_CHECKS.set(
        app,
        {
            "database": partial(ping, engine),
            "broker": broker_check(settings.amqp_url.get_secret_value()),
        },
    )
    try:
        yield engine
    finally:
        if driver is not None:
            await driver.close()
        await engine.dispose()


def serve(app: FastAPI, settings: ServiceSettings, service: str) -> None:
    """Run `app` on uvicorn with JSON logs; SIGINT/SIGTERM stop it gracefully."""
    configure_logging(service, settings.log_level)
    freeze_startup_objects()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=False,
        access_log=settings.access_log,
        server_header=False,
        timeout_graceful_shutdown=10,
    )

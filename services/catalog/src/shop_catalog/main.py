"""Catalog API: the FastAPI app and its `catalog-api` entrypoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from shop_catalog.products.router import router as products_router
from shop_catalog.settings import CatalogSettings
from shop_common.db import create_engine, create_sessionmaker, ping
from shop_common.web.app import create_service_app, serve
from shop_common.web.health import broker_check

SERVICE = "catalog"


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            schema=settings.db_schema,
            application_name=f"{SERVICE}-api",
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.readiness_checks = {
            "database": partial(ping, engine),
            "broker": broker_check(settings.amqp_url.get_secret_value()),
        }
        try:
            yield
        finally:
            await engine.dispose()

    return create_service_app(
        title="Catalog", settings=settings, routers=[products_router], lifespan=lifespan
    )


def run_api() -> None:
    settings = CatalogSettings()
    serve(create_app(settings), settings, SERVICE)

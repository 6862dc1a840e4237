"""Catalog API: the FastAPI app and its `catalog-api` entrypoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from shop_catalog.products.router import router as products_router
from shop_catalog.settings import CatalogSettings
from shop_common.web import api_resources, create_service_app, serve

SERVICE = "catalog"


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with api_resources(app, settings, SERVICE):
            yield

    return create_service_app(
        title="Catalog", settings=settings, routers=[products_router], lifespan=lifespan
    )


def run_api() -> None:
    settings = CatalogSettings()
    serve(create_app(settings), settings, SERVICE)

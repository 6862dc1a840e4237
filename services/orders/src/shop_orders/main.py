"""Orders API: the FastAPI app and its `orders-api` entrypoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from shop_common.http import ResilientHttpClient
from shop_common.state import StateKey
from shop_common.web import api_resources, create_service_app, serve
from shop_orders.catalog_client.client import CATALOG, CatalogClient
from shop_orders.orders.router import router as orders_router
from shop_orders.settings import OrdersSettings

SERVICE = "orders"
CATALOG_HTTP = StateKey[ResilientHttpClient]("catalog_http")


def create_app(
    settings: OrdersSettings | None = None,
    *,
    catalog_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """`catalog_transport` lets tests put Catalog in-process (ASGITransport) or fake it."""
    settings = settings or OrdersSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            api_resources(app, settings, SERVICE),
            ResilientHttpClient(
                settings.catalog_client_config(), transport=catalog_transport
            ) as http,
        ):
            CATALOG_HTTP.set(app, http)
            CATALOG.set(app, CatalogClient(http))
            yield

    return create_service_app(
        title="Orders", settings=settings, routers=[orders_router], lifespan=lifespan
    )


def run_api() -> None:
    settings = OrdersSettings()
    serve(create_app(settings), settings, SERVICE)

"""Every route and every dependency of both APIs runs on the event loop.

FastAPI runs a plain `def` endpoint or dependency in a worker thread: a thread hop on
every request, which for a dictionary lookup costs more than the lookup. Keep them async.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import SecretStr

from shop_catalog.main import create_app as create_catalog
from shop_catalog.settings import CatalogSettings
from shop_orders.main import create_app as create_orders
from shop_orders.settings import OrdersSettings

SECRET = SecretStr("x" * 32)
URL = "postgresql+asyncpg://nobody@127.0.0.1/none"  # never connected: no lifespan runs


def apps() -> dict[str, FastAPI]:
    return {
        "catalog": create_catalog(CatalogSettings(database_url=URL, jwt_secret=SECRET)),
        "orders": create_orders(OrdersSettings(database_url=URL, jwt_secret=SECRET)),
    }


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        nested = getattr(route, "original_router", None)  # FastAPI's included routers
        if nested is not None:
            yield from _api_routes(nested.routes)


def _calls(dependant: Dependant) -> Iterator[object]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _runs_on_the_loop(call: object) -> bool:
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else type(call).__call__
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_no_route_or_dependency_runs_in_a_thread(service: str) -> None:
    routes = list(_api_routes(apps()[service].routes))
    assert routes
    sync = sorted(
        {
            f"{route.path}: {getattr(call, '__qualname__', call)}"
            for route in routes
            for call in _calls(route.dependant)
            if not _runs_on_the_loop(call)
        }
    )
    assert sync == [], "sync endpoints/dependencies (each costs a thread hop):\n" + "\n".join(sync)

"""A stand-in Catalog for showing the pact break: same `GET /v1/products`, one field renamable.

It keeps its products in memory, set by the same provider states as the real Catalog, and
runs on uvicorn in a thread on a free loopback port for the length of a `with` block.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shop_orders.catalog_client.schemas import CatalogProduct
from tests.contract.provider import state_rows


class FakeCatalog:
    def __init__(self, *, price_field: str = "price_cents") -> None:
        self.price_field = price_field
        self.products: dict[uuid.UUID, CatalogProduct] = {}
        self.url = ""  # known once started
        app = Starlette(routes=[Route("/v1/products", self._list_products)])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,  # the OS picks a free port: no race with other processes
            lifespan="off",
            ws="none",
            log_config=None,
            log_level="warning",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-catalog", daemon=True)

    def states(self, state: str, action: str, parameters: Mapping[str, Any] | None) -> None:
        """Provider state handler: the same rows the real Catalog would get, in memory."""
        ids, rows = state_rows(state, parameters)
        for product_id in ids:
            self.products.pop(product_id, None)
        if action == "setup":
            self.products.update((p.id, p) for p in rows)

    async def _list_products(self, request: Request) -> JSONResponse:
        wanted = {uuid.UUID(i) for i in request.query_params.get("ids", "").split(",") if i}
        items = [
            {
                "id": str(p.id),
                "sku": p.sku,
                "name": p.name,
                "description": "",
                self.price_field: p.price_cents,
                "currency": p.currency,
                "active": p.active,
            }
            for p in self.products.values()
            if p.id in wanted
        ]
        return JSONResponse({"items": items, "next_cursor": None})

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake Catalog did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

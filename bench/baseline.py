"""The limit line: bare Starlette + asyncpg + orjson reading one `catalog.products` row by id.

One query, no ORM, no validation beyond parsing the id, no middleware, no access log: what
`GET /v1/products/{id}` costs on this stack when nothing but the work itself is done. It
runs on the same uvicorn (uvloop, httptools) as the services and answers the same JSON
body and `ETag`, so the two differ only in what the service does around the query.

Run: `BENCH_BASELINE_DSN=postgresql://... BENCH_BASELINE_PORT=8101 python bench/baseline.py`
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


SERIALIZER = "orjson"

# id as text: asyncpg's own UUID type is not one orjson knows.
QUERY = """
SELECT id::text AS id, sku, name, description, price_cents, currency,
       stock_available, stock_reserved, active, version, created_at, updated_at
FROM catalog.products WHERE id = $1
"""
# Same pool size as the services' default (`<SERVICE>_DB_POOL_SIZE` = 10).
POOL_SIZE = 10
NOT_FOUND = b'{"type":"about:blank","title":"Not Found","status":404,"detail":"No such product."}'


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(
        os.environ["BENCH_BASELINE_DSN"], min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


async def get_product(request: Request) -> Response:
    try:
        product_id = uuid.UUID(request.path_params["product_id"])
    except ValueError:
        return Response(NOT_FOUND, 404, media_type="application/problem+json")
    row = await request.app.state.pool.fetchrow(QUERY, product_id)
    if row is None:
        return Response(NOT_FOUND, 404, media_type="application/problem+json")
    return Response(
        dumps(dict(row)),
        media_type="application/json",
        headers={"ETag": f'"{row["version"]}"'},
    )


async def livez(_: Request) -> Response:
    return Response(b'{"status":"ok","serializer":"' + SERIALIZER.encode() + b'"}')


app = Starlette(
    routes=[Route("/v1/products/{product_id}", get_product), Route("/livez", livez)],
    lifespan=lifespan,
)


def main() -> None:
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ.get("BENCH_BASELINE_PORT", "8101")),
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()

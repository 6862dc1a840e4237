"""HTTP routes of the products API (thin: parse, call the service, shape the response)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response, status

from shop_catalog.products import service
from shop_catalog.products.etag import etag, none_match, page_etag, versions_from_if_match
from shop_catalog.products.models import Product
from shop_catalog.products.schemas import (
    ProductCreate,
    ProductOut,
    ProductPatch,
    StockAdjustmentCreate,
)
from shop_common.auth import AdminDep
from shop_common.db import Page, decode_cursor
from shop_common.errors import Unprocessable
from shop_common.web import CursorQuery, DriverPoolDep, LimitQuery, SessionDep, json_response

router = APIRouter(prefix="/v1/products", tags=["products"])
MAX_IDS = 100


def _parse_ids(raw: str | None) -> list[UUID] | None:
    if raw is None:
        return None
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) > MAX_IDS:
        raise Unprocessable(f"At most {MAX_IDS} ids per request.")
    ids: list[UUID] = []
    bad: list[dict[str, object]] = []
    for index, part in enumerate(parts):
        try:
            ids.append(UUID(part))
        except ValueError:
            bad.append({"loc": ["query", "ids", index], "msg": "not a UUID", "type": "uuid"})
    if bad:
        raise Unprocessable("`ids` must be comma-separated UUIDs.", errors=bad)
    return list(dict.fromkeys(ids))


IfNoneMatch = Annotated[
    str | None,
    Header(max_length=1000, description="ETags the client holds: 304 if one is current"),
]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: the ETag in If-None-Match is current"}
}


def _with_etag(response: Response, product: Product) -> ProductOut:
    response.headers["ETag"] = etag(product.version)
    return ProductOut.model_validate(product)


def _not_modified(tag: str) -> Response:
    return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})


@router.get("", response_model=Page[ProductOut], responses=NOT_MODIFIED)
async def list_products(
    reads: DriverPoolDep,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    active: bool | None = None,
    ids: Annotated[str | None, Query(max_length=100 * 37, description="Comma-separated")] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    page = await service.list_products(
        reads,
        limit=limit,
        after=decode_cursor(cursor) if cursor else None,
        q=q,
        active=active,
        ids=_parse_ids(ids),
    )
    tag = page_etag(((p["id"], p["version"]) for p in page["items"]), page["next_cursor"])
    if not none_match(if_none_match, tag):
        return _not_modified(tag)
    return json_response(page, headers={"ETag": tag})


@router.get("/{product_id}", response_model=ProductOut, responses=NOT_MODIFIED)
async def get_product(
    product_id: UUID, reads: DriverPoolDep, if_none_match: IfNoneMatch = None
) -> Response:
    product = await service.get_product(reads, product_id)
    tag = etag(product["version"])
    if not none_match(if_none_match, tag):
        return _not_modified(tag)
    return json_response(dict(product), headers={"ETag": tag})


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_product(
    body: ProductCreate, session: SessionDep, request: Request, response: Response, _: AdminDep
) -> ProductOut:
    product = await service.create_product(session, body)
    response.headers["Location"] = str(request.url_for("get_product", product_id=product.id))
    return _with_etag(response, product)


@router.patch("/{product_id}")
async def update_product(
    product_id: UUID,
    body: ProductPatch,
    session: SessionDep,
    response: Response,
    _: AdminDep,
    if_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> ProductOut:
    versions = versions_from_if_match(if_match)
    product = await service.update_product(session, product_id, versions, body)
    return _with_etag(response, product)


@router.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT)
async def deactivate_product(product_id: UUID, session: SessionDep, _: AdminDep) -> None:
    await service.deactivate_product(session, product_id)


@router.post("/{product_id}/stock-adjustments")
async def adjust_stock(
    product_id: UUID,
    body: StockAdjustmentCreate,
    session: SessionDep,
    response: Response,
    admin: AdminDep,
) -> ProductOut:
    product = await service.adjust_stock(
        session, product_id, delta=body.delta, reason=body.reason, actor=admin.subject
    )
    return _with_etag(response, product)

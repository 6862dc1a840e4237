"""HTTP routes of the products API (thin: parse, call the service, shape the response)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import StringConstraints
from pydantic.json_schema import SkipJsonSchema

from shop_catalog.products import service
from shop_catalog.products.etag import etag, none_match, page_etag, versions_from_if_match
from shop_catalog.products.models import Product
from shop_catalog.products.schemas import (
    NO_NUL,
    ProductCreate,
    ProductOut,
    ProductPatch,
    StockAdjustmentCreate,
)
from shop_common.auth import AdminDep
from shop_common.db import Page, decode_cursor
from shop_common.errors import Unprocessable
from shop_common.web import (
    FORBIDDEN,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    CursorQuery,
    DriverPoolDep,
    LimitQuery,
    SessionDep,
    hot_get,
    json_response,
    location,
    problem,
    response_headers,
)

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


_UUID = r" *[0-9A-Fa-f]{8}(-?[0-9A-Fa-f]{4}){3}-?[0-9A-Fa-f]{12} *"
# Optional parameters: `X | SkipJsonSchema[None]` (absent, never null), their constraints
# inside X, where the OpenAPI document keeps them.
ProductIds = Annotated[str, StringConstraints(pattern=f"^{_UUID}(,{_UUID}){{0,{MAX_IDS - 1}}}$")]
SearchText = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL)]
IfNoneMatch = Annotated[
    str | SkipJsonSchema[None],
    Header(max_length=1000, description="ETags the client holds: 304 if one is current"),
]
# OpenAPI declarations (responses, headers, links): what each operation can answer.
Responses = dict[int | str, dict[str, Any]]


ETAG = {"ETag": "The product's version as a strong entity tag, for If-Match"}
NOT_FOUND = problem("No product has this id")
NOT_MODIFIED: Responses = {
    304: {
        "description": "Not Modified: the ETag in If-None-Match is current",
        "headers": response_headers({"ETag": "The current entity tag"}),
    }
}
# Whoever holds a product's id (from its creation) can read, change and delete it.
_BY_ID = {"product_id": "$response.body#/id"}
PRODUCT_LINKS = {
    "GetProduct": {"operationId": "get_product", "parameters": _BY_ID},
    "UpdateProduct": {
        "operationId": "update_product",
        "parameters": {**_BY_ID, "header.If-Match": "$response.header.ETag"},
    },
    "DeactivateProduct": {"operationId": "deactivate_product", "parameters": _BY_ID},
    "AdjustStock": {"operationId": "adjust_stock", "parameters": _BY_ID},
}
# If-Match is declared here, not by FastAPI: without it the answer is 428 (RFC 6585), not
# the 422 that FastAPI gives a missing required header.
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": "The product's ETag as last read (or `*`): 412 if it changed since",
    "schema": {"type": "string", "maxLength": 1000},
}


def _with_etag(response: Response, product: Product) -> ProductOut:
    response.headers["ETag"] = etag(product.version)
    return ProductOut.model_validate(product)


def _not_modified(tag: str) -> Response:
    return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})


@router.get(
    "",
    operation_id="list_products",
    response_model=Page[ProductOut],
    responses={
        200: {"headers": response_headers({"ETag": "A weak tag of the page"})},
        **NOT_MODIFIED,
    },
)
async def list_products(
    reads: DriverPoolDep,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
    q: Annotated[
        SearchText | SkipJsonSchema[None], Query(description="Text in name or SKU")
    ] = None,
    active: bool | SkipJsonSchema[None] = None,
    ids: Annotated[
        ProductIds | SkipJsonSchema[None],
        Query(description=f"Comma-separated product ids (at most {MAX_IDS})"),
    ] = None,
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


# The hottest read: served without FastAPI's per-request machinery (shop_common.web.hot).
@hot_get(
    router,
    "/{product_id}",
    operation_id="get_product",
    response_model=ProductOut,
    responses={200: {"headers": response_headers(ETAG)}, **NOT_MODIFIED, 404: NOT_FOUND},
)
async def get_product(
    product_id: UUID, reads: DriverPoolDep, if_none_match: IfNoneMatch = None
) -> Response:
    product = await service.get_product(reads, product_id)
    tag = etag(product["version"])
    if not none_match(if_none_match, tag):
        return _not_modified(tag)
    return json_response(dict(product), headers={"ETag": tag})


@router.post(
    "",
    operation_id="create_product",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {
            "headers": response_headers({"Location": "The product's URL", **ETAG}),
            "links": PRODUCT_LINKS,
        },
        401: UNAUTHORIZED,
        403: FORBIDDEN,
        409: problem("A product already has this SKU"),
        413: PAYLOAD_TOO_LARGE,
    },
)
async def create_product(
    body: ProductCreate, session: SessionDep, request: Request, response: Response, _: AdminDep
) -> ProductOut:
    product = await service.create_product(session, body)
    response.headers["Location"] = location(request, "get_product", product_id=product.id)
    return _with_etag(response, product)


@router.patch(
    "/{product_id}",
    operation_id="update_product",
    openapi_extra={"parameters": [IF_MATCH]},
    responses={
        200: {"headers": response_headers(ETAG)},
        401: UNAUTHORIZED,
        403: FORBIDDEN,
        404: NOT_FOUND,
        412: problem("If-Match names no current version: read the product again"),
        413: PAYLOAD_TOO_LARGE,
        428: problem("If-Match is missing"),
    },
)
async def update_product(
    product_id: UUID,
    body: ProductPatch,
    session: SessionDep,
    response: Response,
    _: AdminDep,
    if_match: Annotated[str | None, Header(max_length=1000, include_in_schema=False)] = None,
) -> ProductOut:
    versions = versions_from_if_match(if_match)
    product = await service.update_product(session, product_id, versions, body)
    return _with_etag(response, product)


@router.delete(
    "/{product_id}",
    operation_id="deactivate_product",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND},
)
async def deactivate_product(product_id: UUID, session: SessionDep, _: AdminDep) -> None:
    await service.deactivate_product(session, product_id)


@router.post(
    "/{product_id}/stock-adjustments",
    operation_id="adjust_stock",
    responses={
        200: {"headers": response_headers(ETAG)},
        401: UNAUTHORIZED,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: problem("The adjustment would make available stock negative"),
        413: PAYLOAD_TOO_LARGE,
    },
)
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

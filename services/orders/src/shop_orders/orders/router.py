"""HTTP routes of the orders API (thin: parse, call the service, shape the response)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import StringConstraints
from pydantic.json_schema import SkipJsonSchema

from shop_common.auth import PrincipalDep
from shop_common.db import Page, decode_cursor
from shop_common.web import (
    FORBIDDEN,
    PAYLOAD_TOO_LARGE,
    SETTINGS,
    UNAUTHORIZED,
    CursorQuery,
    DriverPoolDep,
    LimitQuery,
    SessionDep,
    SessionsDep,
    location,
    problem,
    response_headers,
)
from shop_orders.catalog_client.client import CATALOG, CatalogClient
from shop_orders.idempotency.service import validated_key
from shop_orders.orders import service
from shop_orders.orders.models import OrderStatus
from shop_orders.orders.schemas import OrderCreate, OrderOut
from shop_orders.settings import OrdersSettings

router = APIRouter(prefix="/v1/orders", tags=["orders"])

# OpenAPI declarations: what each operation can answer.
# The key is declared here, not by FastAPI: `validated_key` answers 400 for a missing or
# malformed key (ADR 0004), where FastAPI would answer 422. tests/spec checks that this
# pattern is the one `validated_key` enforces.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "Unique per intended order (a UUID, say); a retry sends the same key",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
    },
}
# orders.customer_id is String(128); PostgreSQL text cannot hold NUL.
CustomerId = Annotated[str, StringConstraints(max_length=128, pattern=r"^[^\x00]*$")]
NOT_FOUND = problem("No order with this id is visible to the caller")
RETRY_AFTER = {"Retry-After": "Seconds to wait before retrying"}
_BY_ID = {"order_id": "$response.body#/id"}
ORDER_LINKS = {
    "GetOrder": {"operationId": "get_order", "parameters": _BY_ID},
    "CancelOrder": {"operationId": "cancel_order", "parameters": _BY_ID},
}


async def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key", include_in_schema=False)] = None,
) -> str:
    return validated_key(key)


async def get_settings(request: Request) -> OrdersSettings:
    settings = SETTINGS.from_request(request)
    assert isinstance(settings, OrdersSettings)
    return settings


IdempotencyKeyDep = Annotated[str, Depends(idempotency_key)]
SettingsDep = Annotated[OrdersSettings, Depends(get_settings)]
CatalogDep = Annotated[CatalogClient, Depends(CATALOG.dependency)]


@router.post(
    "",
    operation_id="place_order",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    openapi_extra={"parameters": [IDEMPOTENCY_KEY]},
    responses={
        201: {
            "headers": {
                **response_headers({"Location": "The order's URL"}),
                "Idempotent-Replayed": {
                    "description": "`true` when this is the stored answer to an earlier request",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            },
            "links": ORDER_LINKS,
        },
        400: problem("Idempotency-Key missing or malformed, or the body is not JSON"),
        401: UNAUTHORIZED,
        403: FORBIDDEN,
        409: problem("A request with this key is in flight", headers=RETRY_AFTER),
        413: PAYLOAD_TOO_LARGE,
        422: problem("Invalid body, unknown or inactive products, or the key was reused"),
        503: problem("Catalog unreachable and no local price copy", headers=RETRY_AFTER),
    },
)
async def place_order(
    principal: PrincipalDep,
    key: IdempotencyKeyDep,
    body: OrderCreate,
    driver: DriverPoolDep,
    sessions: SessionsDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    request: Request,
) -> Response:
    placed = await service.place_order(
        driver, sessions, catalog, settings, principal=principal, key=key, body=body
    )
    headers = {"Location": location(request, "get_order", order_id=placed.order_id)}
    if placed.replayed:
        headers["Idempotent-Replayed"] = "true"
    # The stored JSON as it is: the first answer and every replay are the same bytes.
    return Response(
        placed.body, status_code=placed.status, headers=headers, media_type="application/json"
    )


@router.get(
    "/{order_id}",
    operation_id="get_order",
    responses={401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND},
)
async def get_order(order_id: UUID, session: SessionDep, principal: PrincipalDep) -> OrderOut:
    return OrderOut.model_validate(await service.get_visible_order(session, principal, order_id))


@router.get(
    "",
    operation_id="list_orders",
    responses={
        401: UNAUTHORIZED,
        403: problem("A customer asked for another customer's orders, or the role is unknown"),
    },
)
async def list_orders(
    session: SessionDep,
    principal: PrincipalDep,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
    customer_id: Annotated[
        CustomerId | SkipJsonSchema[None],
        Query(description="Admins: any customer's orders; customers: their own id only"),
    ] = None,
    status: OrderStatus | SkipJsonSchema[None] = None,
) -> Page[OrderOut]:
    return await service.list_orders(
        session,
        principal,
        limit=limit,
        before=decode_cursor(cursor) if cursor else None,
        customer_id=customer_id,
        status=status,
    )


@router.post(
    "/{order_id}/cancel",
    operation_id="cancel_order",
    responses={
        401: UNAUTHORIZED,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: problem("The order was rejected and cannot be cancelled"),
    },
)
async def cancel_order(order_id: UUID, session: SessionDep, principal: PrincipalDep) -> OrderOut:
    return OrderOut.model_validate(await service.cancel_order(session, principal, order_id))

"""HTTP routes of the orders API (thin: parse, call the service, shape the response)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response, status

from shop_common.auth import PrincipalDep
from shop_common.db import Page, decode_cursor
from shop_common.web import SETTINGS, CursorQuery, DriverPoolDep, LimitQuery, SessionDep
from shop_orders.catalog_client.client import CATALOG, CatalogClient
from shop_orders.idempotency.service import validated_key
from shop_orders.orders import service
from shop_orders.orders.models import OrderStatus
from shop_orders.orders.schemas import OrderCreate, OrderOut
from shop_orders.settings import OrdersSettings

router = APIRouter(prefix="/v1/orders", tags=["orders"])


async def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
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
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    responses={
        201: {
            "headers": {
                "Location": {"description": "The order's URL", "schema": {"type": "string"}},
                "Idempotent-Replayed": {
                    "description": "`true` when this is the stored answer to an earlier request",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            }
        },
        400: {"description": "Missing Idempotency-Key"},
        409: {"description": "A request with this key is in flight"},
        422: {"description": "Invalid body, unknown or inactive products, or key reused"},
        503: {"description": "Catalog unreachable and no local price copy (see Retry-After)"},
    },
)
async def place_order(
    principal: PrincipalDep,
    key: IdempotencyKeyDep,
    body: OrderCreate,
    driver: DriverPoolDep,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    request: Request,
) -> Response:
    placed = await service.place_order(
        driver, session, catalog, settings, principal=principal, key=key, body=body
    )
    headers = {"Location": str(request.url_for("get_order", order_id=str(placed.order_id)))}
    if placed.replayed:
        headers["Idempotent-Replayed"] = "true"
    # The stored JSON as it is: the first answer and every replay are the same bytes.
    return Response(
        placed.body, status_code=placed.status, headers=headers, media_type="application/json"
    )


@router.get("/{order_id}")
async def get_order(order_id: UUID, session: SessionDep, principal: PrincipalDep) -> OrderOut:
    return OrderOut.model_validate(await service.get_visible_order(session, principal, order_id))


@router.get("")
async def list_orders(
    session: SessionDep,
    principal: PrincipalDep,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
    customer_id: Annotated[str | None, "Admins only (customers: their own id)"] = None,
    status: OrderStatus | None = None,
) -> Page[OrderOut]:
    return await service.list_orders(
        session,
        principal,
        limit=limit,
        before=decode_cursor(cursor) if cursor else None,
        customer_id=customer_id,
        status=status,
    )


@router.post("/{order_id}/cancel")
async def cancel_order(order_id: UUID, session: SessionDep, principal: PrincipalDep) -> OrderOut:
    return OrderOut.model_validate(await service.cancel_order(session, principal, order_id))

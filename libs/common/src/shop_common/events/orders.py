"""Events published by Orders: placement and the order's final outcomes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from shop_common.events.base import EventPayload


class OrderLineV1(EventPayload):
    product_id: UUID
    quantity: Annotated[int, Field(gt=0)]


class OrderPlacedV1(EventPayload):
    """A PENDING order asks Catalog to reserve all its lines (or none)."""

    order_id: UUID
    customer_id: str = Field(min_length=1)
    lines: tuple[OrderLineV1, ...] = Field(min_length=1)


class OrderConfirmedV1(EventPayload):
    order_id: UUID
    reason: str | None = None


class OrderRejectedV1(EventPayload):
    order_id: UUID
    reason: str | None = None


class OrderCancelledV1(EventPayload):
    """Catalog releases the order's reservation (if it holds one) exactly once."""

    order_id: UUID
    reason: str | None = None

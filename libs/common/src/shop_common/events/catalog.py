"""Events published by Catalog: product snapshots and stock reservation outcomes."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from shop_common.events.base import EventPayload

Quantity = Annotated[int, Field(gt=0)]
RejectionReason = Literal["insufficient_stock", "unknown_product", "inactive"]


class ProductSnapshotV1(EventPayload):
    """Whole product state after a change (`catalog.product.created|updated|deactivated.v1`).

    `version` increases with every change: a replica keeps the highest version it has seen
    and ignores older snapshots, since delivery order is not guaranteed.
    """

    id: UUID
    sku: str = Field(min_length=1)
    name: str
    description: str
    price_cents: int = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    active: bool
    version: int = Field(ge=1)
    updated_at: AwareDatetime


class StockLineV1(EventPayload):
    product_id: UUID
    quantity: Quantity


class StockReservedV1(EventPayload):
    """Every line of the order was reserved, atomically."""

    order_id: UUID
    lines: tuple[StockLineV1, ...] = Field(min_length=1)


class RejectedLineV1(EventPayload):
    """A line of a rejected order; `reason` is None for lines that were fine by themselves."""

    product_id: UUID
    quantity: Quantity
    reason: RejectionReason | None = None


class StockRejectedV1(EventPayload):
    """Nothing was reserved: at least one line had a reason to fail."""

    order_id: UUID
    lines: tuple[RejectedLineV1, ...] = Field(min_length=1)


class StockReleasedV1(EventPayload):
    """A reservation was given back (the order was cancelled); published once per order."""

    order_id: UUID
    lines: tuple[StockLineV1, ...] = Field(min_length=1)

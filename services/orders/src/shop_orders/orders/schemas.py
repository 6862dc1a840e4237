"""Request and response bodies of the orders API."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shop_common.web import WholeNumber
from shop_orders.orders.models import OrderStatus, PricingSource

MAX_LINES = 50
MAX_QUANTITY = 1000


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LineIn(_Input):
    # FastAPI validates parsed JSON in python mode, where strict UUIDs must be UUID objects.
    product_id: Annotated[UUID, Field(strict=False)]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY), WholeNumber]


class OrderCreate(_Input):
    """Each product at most once: duplicate lines are rejected, not merged."""

    lines: Annotated[list[LineIn], Field(min_length=1, max_length=MAX_LINES)]

    @model_validator(mode="after")
    def _no_duplicate_products(self) -> Self:
        counts = Counter(line.product_id for line in self.lines)
        duplicates = sorted(str(p) for p, n in counts.items() if n > 1)
        if duplicates:
            raise ValueError(f"each product may appear once; repeated: {', '.join(duplicates)}")
        return self


class LineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: UUID
    sku: str
    name: str
    unit_price_cents: int
    quantity: int


class PlacedOrderBody(BaseModel):
    """`OrderOut` but for its timestamps: what placement knows before the database stamps
    the order (the statement that writes it adds them to the stored response)."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    customer_id: str
    status: OrderStatus
    status_reason: str | None
    lines: list[LineOut]
    total_cents: int
    currency: str
    pricing_source: PricingSource = Field(
        description="`replica` when Catalog was unreachable and the local copy priced it"
    )


class OrderOut(PlacedOrderBody):
    created_at: datetime
    updated_at: datetime

"""Request and response bodies of the products API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from shop_catalog.products.models import MAX_STOCK
from shop_common.web import WholeNumber

MAX_PRICE_CENTS = 100_000_000_00  # 100 million in major units: far beyond any real item

Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
# What stripping leaves at least one of: no NUL, and not Unicode White_Space (what the
# validator strips), spelled out so that the OpenAPI document means exactly the same.
_WHITE_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[^\x00]*[^\x00{_WHITE_SPACE}][^\x00]*$"
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NOT_BLANK)
]
Name = Text
Description = Annotated[str, StringConstraints(max_length=2000, pattern=NO_NUL)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
PriceCents = Annotated[int, Field(ge=0, le=MAX_PRICE_CENTS), WholeNumber]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ProductCreate(_Input):
    sku: Sku
    name: Name
    description: Description = ""
    price_cents: PriceCents
    currency: Currency
    stock_available: Annotated[int, Field(ge=0, le=MAX_STOCK), WholeNumber] = 0
    active: bool = True


class ProductPatch(_Input):
    """Fields to change; absent fields stay as they are, null is not a value."""

    # At least one field; `SkipJsonSchema[None]`: absent is allowed, null is not.
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: Name | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    price_cents: PriceCents | SkipJsonSchema[None] = None
    active: bool | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _non_empty_non_null(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("at least one of name, description, price_cents, active is required")
        nulls = [f for f in self.model_fields_set if getattr(self, f) is None]
        if nulls:
            raise ValueError(f"fields cannot be null: {', '.join(sorted(nulls))}")
        return self

    def changes(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.model_fields_set}


class StockAdjustmentCreate(_Input):
    delta: Annotated[
        int,
        Field(ge=-MAX_STOCK, le=MAX_STOCK, json_schema_extra={"not": {"const": 0}}),
        WholeNumber,
    ]
    reason: Text

    @model_validator(mode="after")
    def _non_zero(self) -> Self:
        if self.delta == 0:
            raise ValueError("delta must not be zero")
        return self


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    sku: str
    name: str
    description: str
    price_cents: int
    currency: str
    stock_available: int
    stock_reserved: int
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime

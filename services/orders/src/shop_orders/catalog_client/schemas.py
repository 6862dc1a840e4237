"""What Orders reads from Catalog: the fields it relies on, and no more (tolerant reader)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict


class CatalogProduct(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    sku: str
    name: str
    price_cents: int
    currency: str
    active: bool


class CatalogProductPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[CatalogProduct]

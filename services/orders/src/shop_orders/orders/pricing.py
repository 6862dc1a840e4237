"""Pricing an order: live from Catalog, or from the local replica when Catalog is unreachable."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.http import CircuitOpen, UpstreamUnavailable
from shop_common.state import StateKey
from shop_orders.catalog_client.client import CatalogClient
from shop_orders.errors import PricingUnavailable, UnorderableLines
from shop_orders.orders.models import PricingSource
from shop_orders.orders.schemas import LineIn
from shop_orders.replica import repository as replica

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PricedProduct:
    product_id: UUID
    sku: str
    name: str
    price_cents: int
    currency: str
    active: bool


@dataclass(frozen=True, slots=True)
class PricedLine:
    product_id: UUID
    sku: str
    name: str
    unit_price_cents: int
    quantity: int


@dataclass(frozen=True, slots=True)
class PricedOrder:
    lines: list[PricedLine]
    total_cents: int
    currency: str
    source: PricingSource


class Pricer:
    def __init__(self, catalog: CatalogClient, *, retry_after_seconds: int) -> None:
        self._catalog = catalog
        self._retry_after = retry_after_seconds

    async def price(self, session: AsyncSession, lines: Sequence[LineIn]) -> PricedOrder:
        ids = [line.product_id for line in lines]
        try:
            live = await self._catalog.get_products(ids)
            products = {
                i: PricedProduct(i, p.sku, p.name, p.price_cents, p.currency, p.active)
                for i, p in live.items()
            }
            return _priced(lines, products, PricingSource.CATALOG)
        except UpstreamUnavailable as exc:
            log.warning("pricing from the replica: catalog unavailable (%s)", exc)
            retry_after = self._retry_after
            if isinstance(exc, CircuitOpen) and exc.retry_after is not None:
                retry_after = max(1, round(exc.retry_after))
        async with session.begin():
            copies = await replica.get_products(session, ids)
        missing = [i for i in ids if i not in copies]
        if missing:
            raise PricingUnavailable(
                "Catalog is unreachable and the local product copy does not know "
                f"{len(missing)} of the products; try again shortly.",
                retry_after_seconds=retry_after,
            )
        products = {
            i: PricedProduct(i, c.sku, c.name, c.price_cents, c.currency, c.active)
            for i, c in copies.items()
        }
        return _priced(lines, products, PricingSource.REPLICA)


def _priced(
    lines: Sequence[LineIn], products: dict[UUID, PricedProduct], source: PricingSource
) -> PricedOrder:
    errors: list[dict[str, object]] = []
    for index, line in enumerate(lines):
        product = products.get(line.product_id)
        reason = "unknown_product" if product is None else None if product.active else "inactive"
        if reason:
            errors.append(
                {
                    "loc": ["body", "lines", index, "product_id"],
                    "msg": f"product {line.product_id} is {reason.replace('_', ' ')}",
                    "type": reason,
                }
            )
    if errors:
        raise UnorderableLines("Some lines cannot be ordered; see `errors`.", errors=errors)
    currencies = {products[line.product_id].currency for line in lines}
    if len(currencies) > 1:
        raise UnorderableLines(
            f"All lines of an order must share one currency; got {', '.join(sorted(currencies))}."
        )
    priced = [
        PricedLine(
            product_id=line.product_id,
            sku=products[line.product_id].sku,
            name=products[line.product_id].name,
            unit_price_cents=products[line.product_id].price_cents,
            quantity=line.quantity,
        )
        for line in lines
    ]
    return PricedOrder(
        lines=priced,
        total_cents=sum(p.unit_price_cents * p.quantity for p in priced),
        currency=currencies.pop(),
        source=source,
    )


PRICER = StateKey[Pricer]("pricer")

"""Pricing an order's lines from what is known of its products; no I/O (the service fetches)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from shop_common.http import CircuitOpen, UpstreamUnavailable
from shop_orders.errors import PricingUnavailable, UnorderableLines
from shop_orders.orders.models import PricedLine, PricingSource
from shop_orders.orders.schemas import LineIn


class ProductFacts(Protocol):
    """What pricing needs of a product: Catalog's answer and the replica's copy both have it."""

    @property
    def sku(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def price_cents(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def active(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class PricedOrder:
    lines: list[PricedLine]
    currency: str
    source: PricingSource


def price(
    lines: Sequence[LineIn], products: Mapping[UUID, ProductFacts], source: PricingSource
) -> PricedOrder:
    """Snapshot each line's product; 422 names unknown or inactive lines, or mixed currencies."""
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
    return PricedOrder(lines=priced, currency=currencies.pop(), source=source)


def price_from_replica(
    lines: Sequence[LineIn], copies: Mapping[UUID, ProductFacts], *, retry_after_seconds: int
) -> PricedOrder:
    """Catalog could not answer: price from the local copies, or 503 if one is missing."""
    missing = [line.product_id for line in lines if line.product_id not in copies]
    if missing:
        raise PricingUnavailable(
            "Catalog is unreachable and the local product copy does not know "
            f"{len(missing)} of the products; try again shortly.",
            retry_after_seconds=retry_after_seconds,
        )
    return price(lines, copies, PricingSource.REPLICA)


def retry_after(exc: UpstreamUnavailable, default_seconds: int) -> int:
    """When to try again: an open breaker knows when it will let a trial through."""
    if isinstance(exc, CircuitOpen) and exc.retry_after is not None:
        return max(1, round(exc.retry_after))
    return default_seconds

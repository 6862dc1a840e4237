"""Product events: a full snapshot in the outbox, in the transaction of the change."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.messaging import outbox
from shop_catalog.products.models import Product
from shop_common.events import EventType, ProductSnapshotV1


async def product_changed(session: AsyncSession, event_type: EventType, product: Product) -> None:
    await outbox.enqueue(
        session,
        event_type,
        ProductSnapshotV1(
            id=product.id,
            sku=product.sku,
            name=product.name,
            description=product.description,
            price_cents=product.price_cents,
            currency=product.currency,
            active=product.active,
            version=product.version,
            updated_at=product.updated_at,
        ),
        subject=product.id,
    )

"""`catalog-seed`: load a small demo catalog into an empty database (idempotent)."""

from __future__ import annotations

import asyncio

from shop_catalog.products import service
from shop_catalog.products.schemas import ProductCreate
from shop_catalog.settings import CatalogSettings
from shop_common.db import create_engine, create_sessionmaker

DEMO = [
    ("MUG-BLUE", "Blue enamel mug", "A camp mug that survives the dishwasher.", 1250, 40),
    ("TEE-GREY-M", "Grey T-shirt (M)", "Organic cotton, medium.", 1900, 25),
    ("BOTTLE-1L", "Steel water bottle 1 l", "Keeps cold for 24 hours.", 2490, 15),
    ("NOTEBOOK-A5", "A5 dotted notebook", "120 pages, lay-flat binding.", 990, 60),
    ("LAMP-DESK", "Desk lamp", "Warm LED, dimmable.", 4900, 8),
    ("SOCKS-3", "Wool socks, three pairs", "Merino blend.", 1500, 3),
]


async def seed(settings: CatalogSettings) -> int:
    """Insert the demo products if the catalog is empty; returns how many were added."""
    engine = create_engine(
        settings.database_url, schema=settings.db_schema, application_name="catalog-seed"
    )
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as session:
            if await service.has_products(session):
                return 0
        for sku, name, description, price, stock in DEMO:
            body = ProductCreate(
                sku=sku,
                name=name,
                description=description,
                price_cents=price,
                currency="EUR",
                stock_available=stock,
            )
            async with sessions() as session:
                await service.create_product(session, body)
        return len(DEMO)
    finally:
        await engine.dispose()


def main() -> None:
    added = asyncio.run(seed(CatalogSettings()))
    print(f"catalog-seed: added {added} demo products")  # noqa: T201

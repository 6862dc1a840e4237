"""`catalog-migrate`: apply Catalog's Alembic migrations as the catalog service role."""

from __future__ import annotations

from shop_catalog.settings import CatalogSettings
from shop_common.db.migrations import upgrade


def main() -> None:
    upgrade("shop_catalog", CatalogSettings().database_url)

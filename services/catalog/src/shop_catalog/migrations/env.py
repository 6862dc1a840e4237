"""Alembic environment for Catalog: migrates the `catalog` schema only."""

from shop_catalog import messaging  # noqa: F401  (registers the outbox and inbox tables)
from shop_catalog.db import Base
from shop_catalog.products import models as product_models  # noqa: F401
from shop_catalog.reservations import models as reservation_models  # noqa: F401
from shop_catalog.settings import SCHEMA
from shop_common.db.migrations import run_env

run_env(Base.metadata, SCHEMA)

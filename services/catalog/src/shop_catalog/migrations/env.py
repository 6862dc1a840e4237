"""Alembic environment for Catalog: migrates the `catalog` schema only."""

from shop_catalog.db import Base
from shop_catalog.products import models  # noqa: F401  (registers the tables)
from shop_catalog.settings import SCHEMA
from shop_common.db.migrations import run_env

run_env(Base.metadata, SCHEMA)

"""Catalog's ORM base: every table lives in the `catalog` schema."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shop_catalog.settings import SCHEMA
from shop_common.db import schema_metadata


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)

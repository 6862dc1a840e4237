"""Orders's ORM base: every table lives in the `orders` schema."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shop_common.db import schema_metadata
from shop_orders.settings import SCHEMA


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)

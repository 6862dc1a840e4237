"""Orders's ORM base: every table lives in the `orders` schema."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import DeclarativeBase

from shop_common.db import schema_metadata
from shop_orders.settings import SCHEMA


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


def one_of(column: str, values: type[StrEnum], *, name: str) -> CheckConstraint:
    """`CHECK (column IN (...))` with the enum's values: the database knows what the code knows.

    The values are our own enum members, never input, so writing them as literals is safe.
    """
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)

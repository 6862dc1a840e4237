"""Reservation lines as a column type: typed `StockLineV1`s over JSONB."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from shop_common.events import StockLineV1


class StockLines(TypeDecorator[tuple[StockLineV1, ...]]):
    """Stored as `[{"product_id": "<uuid>", "quantity": n}]`, the shape of the event lines,
    so rows written before the column was typed read the same."""

    impl = JSONB
    cache_ok = True

    def process_bind_param(
        self, value: tuple[StockLineV1, ...] | None, dialect: Dialect
    ) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        return [line.to_event_data() for line in value]

    def process_result_value(
        self, value: Any | None, dialect: Dialect
    ) -> tuple[StockLineV1, ...] | None:
        if value is None:
            return None
        return tuple(StockLineV1.from_event_data(line) for line in value)

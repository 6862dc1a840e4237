"""Reservation lines as column types: typed event lines over JSONB."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from shop_common.events import EventPayload, RejectedLineV1, StockLineV1

L = TypeVar("L", bound=EventPayload)


class _EventLines(TypeDecorator[tuple[L, ...]], Generic[L]):
    """Stored as a JSON array in the shape of the event's lines, so what an event carried
    and what the row keeps read the same."""

    impl = JSONB
    cache_ok = True
    line: type[L]

    def process_bind_param(
        self, value: tuple[L, ...] | None, dialect: Dialect
    ) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        return [line.to_event_data() for line in value]

    def process_result_value(self, value: Any | None, dialect: Dialect) -> tuple[L, ...] | None:
        if value is None:
            return None
        return tuple(self.line.from_event_data(line) for line in value)


class StockLines(_EventLines[StockLineV1]):
    """`[{"product_id": "<uuid>", "quantity": n}]`, the shape of the event lines, so rows
    written before the column was typed read the same."""

    cache_ok = True  # SQLAlchemy reads it from each class itself, not from a base
    line = StockLineV1


class RejectedLines(_EventLines[RejectedLineV1]):
    """`[{"product_id": "<uuid>", "quantity": n, "reason": "..." | null}]`: a rejection's
    verdicts, kept so a repeated placement gets the same answer (ADR 0012)."""

    cache_ok = True
    line = RejectedLineV1

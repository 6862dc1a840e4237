"""Keyset pagination over (created_at, id): opaque cursors and the page envelope."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel

from shop_common.errors import BadRequest

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class Keyset(BaseModel):
    """Position after the last item of a page: the sort key of that item."""

    created_at: datetime
    id: UUID


def encode_cursor(position: Keyset) -> str:
    raw = json.dumps([position.created_at.isoformat(), str(position.id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Keyset:
    """Parse a cursor; anything not produced by `encode_cursor` is a 400."""
    invalid = BadRequest("The cursor is not valid; start again without it.")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, id_ = json.loads(raw)
        position = Keyset(created_at=datetime.fromisoformat(created_at), id=UUID(id_))
        if position.created_at.tzinfo is None:
            raise invalid
        # Out-of-range instants (year 1 at +14:00, say) overflow here, not in the database.
        position.created_at.astimezone(UTC)
    except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
        raise invalid from exc
    return position


def page_of(model: type[M], rows: Sequence[object], limit: int) -> Page[M]:
    """A page from rows fetched with `limit + 1`: the extra row only says more exist.

    `model` must carry `created_at` and `id`, the keyset both services sort by.
    """
    items = [model.model_validate(row) for row in rows[:limit]]
    next_cursor = (
        encode_cursor(Keyset.model_validate(items[-1], from_attributes=True))
        if len(rows) > limit
        else None
    )
    return Page[M](items=items, next_cursor=next_cursor)


def page_of_rows(rows: Sequence[Mapping[str, Any]], limit: int) -> dict[str, Any]:
    """`page_of` for plain rows that are already the items' shape (a hot read's rows, to be
    serialized as they are): the page as a dict, `Page`'s fields, no model pass."""
    items = [dict(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(Keyset(created_at=last["created_at"], id=last["id"]))
    return {"items": items, "next_cursor": next_cursor}

"""Query parameters of cursor-paginated list endpoints (the cursors are `shop_common.db`'s)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

LimitQuery = Annotated[int, Query(ge=1, le=100, description="Page size (1..100).")]
CursorQuery = Annotated[
    str | None, Query(max_length=200, description="Opaque cursor from a previous page.")
]

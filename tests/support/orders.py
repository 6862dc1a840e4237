"""Request builders for the Orders API."""

from __future__ import annotations

import uuid
from typing import Any


def key_header(key: str | None = None) -> dict[str, str]:
    return {"Idempotency-Key": key or str(uuid.uuid4())}


def order_body(*lines: tuple[str, int]) -> dict[str, Any]:
    return {"lines": [{"product_id": p, "quantity": q} for p, q in lines]}

"""JSON responses encoded once, by orjson, from plain data: the hot reads' way out.

A route that returns a pydantic model pays for validating it again and serializing it
through FastAPI's response field; a hot read whose rows already have the response's shape
returns `json_response(...)` instead, and keeps `response_model=` for the OpenAPI document.
The bytes are the same as pydantic's: UUIDs and datetimes as pydantic writes them (UTC as
`Z`), keys in the order given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["encode_json", "json_response"]


def encode_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


def json_response(
    value: Any, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        encode_json(value), status_code=status_code, headers=headers, media_type="application/json"
    )

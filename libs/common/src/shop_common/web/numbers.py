"""Whole numbers in JSON request bodies: `5` and `5.0` are the same integer.

JSON has one number type, and JSON Schema (the OpenAPI 3.1 documents) counts `5.0` as an
integer; the bodies are otherwise strict, so a string or a bool is still not a number.
"""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator


def _whole_float_as_int(value: Any) -> Any:
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# Last in `Annotated[int, Field(ge=..., le=...), WholeNumber]`: after the bounds, so that
# they stay on the integer schema (and in the OpenAPI document).
WholeNumber = BeforeValidator(_whole_float_as_int)

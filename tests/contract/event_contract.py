"""The event contract: docs/asyncapi.yaml, what it says each event carries, and examples.

The checked-in document is the contract both sides are tested against (not the payload
models, which both services share: a renamed field would change both at once and break
nothing). `python -m tests.contract.event_contract` regenerates it from the registry.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import find
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from shop_catalog.events.handlers import HANDLERS as CATALOG_HANDLERS
from shop_common.events import PAYLOAD_MODELS
from shop_common.events.asyncapi import asyncapi_document
from shop_orders.events.handlers import HANDLERS as ORDERS_HANDLERS

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
CONSUMERS = {"catalog": sorted(CATALOG_HANDLERS), "orders": sorted(ORDERS_HANDLERS)}
REGENERATE = "uv run --frozen python -m tests.contract.event_contract"
# A field no version of any event has: consumers must ignore what they do not know.
UNKNOWN_FIELD = "x_added_later"


# What each consumer's handlers read of each event (`lines[].reason`: in every line): the
# consumer's side of the contract, written by hand like the HTTP pact's expectations, so that
# regenerating the document after a producer drops or renames one of these still fails.
_SNAPSHOT = ["id", "sku", "name", "price_cents", "currency", "active", "version"]
READS: dict[str, dict[str, list[str]]] = {
    "orders": {
        "catalog.product.created.v1": _SNAPSHOT,
        "catalog.product.updated.v1": _SNAPSHOT,
        "catalog.product.deactivated.v1": _SNAPSHOT,
        "catalog.stock.reserved.v1": ["order_id"],
        "catalog.stock.rejected.v1": ["order_id", "lines[].product_id", "lines[].reason"],
        "catalog.stock.released.v1": ["order_id"],
    },
    "catalog": {
        "orders.order.placed.v1": ["order_id", "lines[].product_id", "lines[].quantity"],
        "orders.order.cancelled.v1": ["order_id"],
        "orders.order.confirmed.v1": [],
        "orders.order.rejected.v1": [],
    },
}


def missing_reads(event_type: str, fields: list[str]) -> list[str]:
    """The `fields` that the checked-in payload of `event_type` does not declare; a field
    a consumer reads must be declared (and, unless it may be null, required)."""
    document = checked_in()
    missing = []
    for path in fields:
        schema = document["components"]["messages"][event_type]["payload"]
        for part in path.split("."):
            schema = _resolve(schema, document)
            name = part.removesuffix("[]")
            declared = schema.get("properties", {}).get(name)
            if declared is None or (
                name not in schema.get("required", []) and "anyOf" not in declared
            ):
                missing.append(path)
                break
            schema = _resolve(declared, document)["items"] if part.endswith("[]") else declared
    return missing


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        resolved: dict[str, Any] = document["components"]["schemas"][
            schema["$ref"].rsplit("/", 1)[1]
        ]
        return resolved
    return schema


def generated() -> dict[str, Any]:
    return asyncapi_document(CONSUMERS)


def render(document: dict[str, Any]) -> str:
    header = f"# Generated from shop_common.events by `{REGENERATE}`; do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


@cache
def checked_in() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return loaded


def payload_validator(event_type: str) -> Draft202012Validator:
    """Validates an event's data against the checked-in contract (formats too)."""
    document = checked_in()
    payload = document["components"]["messages"][event_type]["payload"]
    return Draft202012Validator(
        {**payload, "components": document["components"]}, format_checker=FormatChecker()
    )


def examples(event_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, data) of contract-valid payloads of `event_type`: with only the required
    fields, and with every field set plus one nobody knows, at every level."""
    document = checked_in()
    schema = document["components"]["messages"][event_type]["payload"]
    for name, full in (("required fields only", False), ("every field, and an unknown", True)):
        data = _example(schema, document, full=full)
        payload_validator(event_type).validate(_without_unknown(data))
        yield name, data


def _example(schema: dict[str, Any], document: dict[str, Any], *, full: bool) -> Any:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _example(document["components"]["schemas"][name], document, full=full)
    if "anyOf" in schema:  # `X | None`: the value when full, else null
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        return _example(options[0], document, full=full) if full else None
    if "enum" in schema:
        return schema["enum"][-1 if full else 0]
    kind = schema.get("type")
    if kind == "object":
        fields = schema["properties"]
        names = fields if full else schema.get("required", [])
        value = {name: _example(fields[name], document, full=full) for name in names}
        return {**value, UNKNOWN_FIELD: "ignored"} if full else value
    if kind == "array":
        count = max(schema.get("minItems", 0), 2 if full else 1)
        return [_example(schema["items"], document, full=full) for _ in range(count)]
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return low + (41 if full else 0)
    if kind == "boolean":
        return full
    if kind == "string":
        return _string(schema, full=full)
    raise NotImplementedError(f"no example for {schema}")


def _string(schema: dict[str, Any], *, full: bool) -> str:
    fmt = schema.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date-time":
        return datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC).isoformat()
    if "pattern" in schema:  # Hypothesis' simplest match: deterministic
        return find(st.from_regex(schema["pattern"], fullmatch=True), lambda _: True)
    return "x" * max(schema.get("minLength", 0), 12 if full else 0)


def _without_unknown(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_unknown(v) for k, v in value.items() if k != UNKNOWN_FIELD}
    if isinstance(value, list):
        return [_without_unknown(v) for v in value]
    return value


def owned_types(service: str) -> set[str]:
    return {t for t in PAYLOAD_MODELS if t.startswith(f"{service}.")}


if __name__ == "__main__":
    DOCUMENT.write_text(render(generated()))
    print(f"wrote {DOCUMENT}", file=sys.stderr)

"""Payload models: one per type and version, strict to build, tolerant to read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shop_common.events import (
    PAYLOAD_MODELS,
    EventType,
    OrderCancelledV1,
    OrderLineV1,
    OrderPlacedV1,
    ProductSnapshotV1,
    RejectedLineV1,
    StockRejectedV1,
    UnknownEventTypeError,
    parse_payload,
)

# The event contract of ARCHITECTURE.md, verbatim.
CONTRACT_TYPES = {
    "catalog.product.created.v1",
    "catalog.product.updated.v1",
    "catalog.product.deactivated.v1",
    "catalog.stock.reserved.v1",
    "catalog.stock.rejected.v1",
    "catalog.stock.released.v1",
    "orders.order.placed.v1",
    "orders.order.confirmed.v1",
    "orders.order.rejected.v1",
    "orders.order.cancelled.v1",
}


def product() -> ProductSnapshotV1:
    return ProductSnapshotV1(
        id=uuid.uuid4(),
        sku="SKU-1",
        name="Mug",
        description="",
        price_cents=1299,
        currency="EUR",
        active=True,
        version=3,
        updated_at=datetime.now(UTC),
    )


def test_registry_covers_exactly_the_contract() -> None:
    assert set(PAYLOAD_MODELS) == CONTRACT_TYPES
    assert {str(t) for t in EventType} == CONTRACT_TYPES


def test_round_trip_through_json() -> None:
    snapshot = product()
    data = snapshot.to_event_data()
    assert isinstance(data["id"], str)
    assert parse_payload("catalog.product.updated.v1", data) == snapshot


def test_building_is_strict() -> None:
    with pytest.raises(ValidationError):
        OrderCancelledV1(order_id=uuid.uuid4(), reson="typo")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        OrderPlacedV1(order_id=uuid.uuid4(), customer_id="alice", lines=())
    with pytest.raises(ValidationError):
        OrderLineV1(product_id=uuid.uuid4(), quantity=0)


def test_models_are_frozen() -> None:
    event = OrderCancelledV1(order_id=uuid.uuid4())
    with pytest.raises(ValidationError):
        event.reason = "x"  # type: ignore[misc]


def test_reading_tolerates_unknown_fields_at_any_depth() -> None:
    order_id, product_id = uuid.uuid4(), uuid.uuid4()
    data = {
        "order_id": str(order_id),
        "customer_id": "alice",
        "lines": [{"product_id": str(product_id), "quantity": 2, "gift_wrap": True}],
        "channel": "web",
    }
    event = parse_payload("orders.order.placed.v1", data)
    assert event == OrderPlacedV1(
        order_id=order_id,
        customer_id="alice",
        lines=(OrderLineV1(product_id=product_id, quantity=2),),
    )


def test_reading_still_validates_known_fields() -> None:
    with pytest.raises(ValidationError):
        parse_payload("catalog.stock.rejected.v1", {"order_id": str(uuid.uuid4()), "lines": []})
    line = {"product_id": str(uuid.uuid4()), "quantity": 1, "reason": "sold_out"}
    with pytest.raises(ValidationError):
        parse_payload("catalog.stock.rejected.v1", {"order_id": str(uuid.uuid4()), "lines": [line]})


def test_rejection_carries_per_line_reasons() -> None:
    rejected = StockRejectedV1(
        order_id=uuid.uuid4(),
        lines=(
            RejectedLineV1(product_id=uuid.uuid4(), quantity=5, reason="insufficient_stock"),
            RejectedLineV1(product_id=uuid.uuid4(), quantity=1, reason="unknown_product"),
            RejectedLineV1(product_id=uuid.uuid4(), quantity=1),
        ),
    )
    assert [line["reason"] for line in rejected.to_event_data()["lines"]] == [
        "insufficient_stock",
        "unknown_product",
        None,
    ]


def test_unknown_type() -> None:
    with pytest.raises(UnknownEventTypeError):
        parse_payload("orders.order.shipped.v1", {})

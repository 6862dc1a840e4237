"""Payload models of every domain event on `shop.events`, per type and version.

Both services import these (a service never imports the other), so this package is the
single source of truth for what each event carries. See docs/events.md.
"""

from shop_common.events.base import EventPayload
from shop_common.events.catalog import (
    ProductSnapshotV1,
    RejectedLineV1,
    RejectionReason,
    StockLineV1,
    StockRejectedV1,
    StockReleasedV1,
    StockReservedV1,
)
from shop_common.events.orders import (
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderLineV1,
    OrderPlacedV1,
    OrderRejectedV1,
)
from shop_common.events.registry import (
    PAYLOAD_MODELS,
    EventType,
    UnknownEventTypeError,
    parse_payload,
    payload_model,
)

__all__ = [
    "PAYLOAD_MODELS",
    "EventPayload",
    "EventType",
    "OrderCancelledV1",
    "OrderConfirmedV1",
    "OrderLineV1",
    "OrderPlacedV1",
    "OrderRejectedV1",
    "ProductSnapshotV1",
    "RejectedLineV1",
    "RejectionReason",
    "StockLineV1",
    "StockRejectedV1",
    "StockReleasedV1",
    "StockReservedV1",
    "UnknownEventTypeError",
    "parse_payload",
    "payload_model",
]

"""Event type names (= routing keys) and the payload model each one carries."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from shop_common.events.base import EventPayload
from shop_common.events.catalog import (
    ProductSnapshotV1,
    StockRejectedV1,
    StockReleasedV1,
    StockReservedV1,
)
from shop_common.events.orders import (
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderPlacedV1,
    OrderRejectedV1,
)


class EventType(StrEnum):
    """`<service>.<aggregate>.<what happened>.v<major>`: the CloudEvents `type` and routing key."""

    PRODUCT_CREATED_V1 = "catalog.product.created.v1"
    PRODUCT_UPDATED_V1 = "catalog.product.updated.v1"
    PRODUCT_DEACTIVATED_V1 = "catalog.product.deactivated.v1"
    STOCK_RESERVED_V1 = "catalog.stock.reserved.v1"
    STOCK_REJECTED_V1 = "catalog.stock.rejected.v1"
    STOCK_RELEASED_V1 = "catalog.stock.released.v1"
    ORDER_PLACED_V1 = "orders.order.placed.v1"
    ORDER_CONFIRMED_V1 = "orders.order.confirmed.v1"
    ORDER_REJECTED_V1 = "orders.order.rejected.v1"
    ORDER_CANCELLED_V1 = "orders.order.cancelled.v1"


PAYLOAD_MODELS: Mapping[str, type[EventPayload]] = MappingProxyType(
    {
        EventType.PRODUCT_CREATED_V1: ProductSnapshotV1,
        EventType.PRODUCT_UPDATED_V1: ProductSnapshotV1,
        EventType.PRODUCT_DEACTIVATED_V1: ProductSnapshotV1,
        EventType.STOCK_RESERVED_V1: StockReservedV1,
        EventType.STOCK_REJECTED_V1: StockRejectedV1,
        EventType.STOCK_RELEASED_V1: StockReleasedV1,
        EventType.ORDER_PLACED_V1: OrderPlacedV1,
        EventType.ORDER_CONFIRMED_V1: OrderConfirmedV1,
        EventType.ORDER_REJECTED_V1: OrderRejectedV1,
        EventType.ORDER_CANCELLED_V1: OrderCancelledV1,
    }
)


class UnknownEventTypeError(LookupError):
    pass


def payload_model(event_type: str) -> type[EventPayload]:
    try:
        return PAYLOAD_MODELS[event_type]
    except KeyError:
        raise UnknownEventTypeError(event_type) from None


def parse_payload(event_type: str, data: Any) -> EventPayload:
    """Validate received `data` against the model of `event_type` (tolerant reader).

    Raises `UnknownEventTypeError` or `pydantic.ValidationError`.
    """
    return payload_model(event_type).from_event_data(data)

"""The order aggregate's transitions and the events they emit (no database needed)."""

from __future__ import annotations

import uuid

import pytest

from shop_common import events
from shop_common.events import EventType
from shop_orders.errors import OrderNotCancellable
from shop_orders.orders.models import (
    NEXT,
    Order,
    OrderEvent,
    OrderStatus,
    PricedLine,
    PricingSource,
)

PENDING, CONFIRMED, REJECTED, CANCELLED = (
    OrderStatus.PENDING,
    OrderStatus.CONFIRMED,
    OrderStatus.REJECTED,
    OrderStatus.CANCELLED,
)


def order_in(status: OrderStatus) -> Order:
    return Order(
        id=uuid.uuid4(),
        customer_id="alice",
        status=status,
        total_cents=0,
        currency="EUR",
        pricing_source=PricingSource.CATALOG,
    )


def test_the_allowed_transitions_are_the_contracts() -> None:
    assert dict(NEXT) == {
        PENDING: {CONFIRMED, REJECTED, CANCELLED},
        CONFIRMED: {CANCELLED},
        REJECTED: set(),
        CANCELLED: set(),
    }


def test_place_starts_pending_with_the_placed_event_and_the_total() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    order, event = Order.place(
        "alice",
        [PricedLine(a, "A", "Apple", 250, 3), PricedLine(b, "B", "Bread", 1000, 1)],
        currency="EUR",
        pricing_source=PricingSource.REPLICA,
    )
    assert (order.status, order.total_cents, order.pricing_source) == (PENDING, 1750, "replica")
    assert [(line.line_no, line.product_id, line.quantity) for line in order.lines] == [
        (1, a, 3),
        (2, b, 1),
    ]
    assert event == OrderEvent(
        type=EventType.ORDER_PLACED_V1,
        payload=events.OrderPlacedV1(
            order_id=order.id,
            customer_id="alice",
            lines=(
                events.OrderLineV1(product_id=a, quantity=3),
                events.OrderLineV1(product_id=b, quantity=1),
            ),
        ),
        subject=order.id,
    )


def test_confirm_moves_only_a_pending_order() -> None:
    order = order_in(PENDING)
    assert order.confirm() == OrderEvent(
        EventType.ORDER_CONFIRMED_V1, events.OrderConfirmedV1(order_id=order.id), order.id
    )
    assert order.status == CONFIRMED
    assert order.confirm() is None


def test_reject_moves_only_a_pending_order_and_keeps_a_bounded_reason() -> None:
    order = order_in(PENDING)
    event = order.reject("stock: " + "x" * 300)
    assert order.status == REJECTED
    assert order.status_reason is not None
    assert len(order.status_reason) == 200
    assert event == OrderEvent(
        EventType.ORDER_REJECTED_V1,
        events.OrderRejectedV1(order_id=order.id, reason=order.status_reason),
        order.id,
    )
    assert order.reject("again") is None
    assert order.status_reason.startswith("stock: ")


@pytest.mark.parametrize("status", [PENDING, CONFIRMED])
def test_cancel_moves_pending_and_confirmed_orders_once(status: OrderStatus) -> None:
    order = order_in(status)
    assert order.cancel("cancelled by customer") == OrderEvent(
        EventType.ORDER_CANCELLED_V1,
        events.OrderCancelledV1(order_id=order.id, reason="cancelled by customer"),
        order.id,
    )
    assert (order.status, order.status_reason) == (CANCELLED, "cancelled by customer")
    assert order.cancel("cancelled by admin") is None
    assert order.status_reason == "cancelled by customer"


def test_a_rejected_order_cannot_be_cancelled() -> None:
    order = order_in(REJECTED)
    with pytest.raises(OrderNotCancellable):
        order.cancel("cancelled by customer")
    assert order.status == REJECTED


@pytest.mark.parametrize("status", [CONFIRMED, REJECTED, CANCELLED])
def test_late_stock_outcomes_leave_a_decided_order_alone(status: OrderStatus) -> None:
    order = order_in(status)
    assert order.confirm() is None
    assert order.reject("stock: too late") is None
    assert (order.status, order.status_reason) == (status, None)

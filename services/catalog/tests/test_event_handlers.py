"""Each handler of Orders' events as a unit of work: applied twice, the second time changes
nothing (stock, product version, reservation row) and publishes nothing new, on real
PostgreSQL. The one exception is by design (ADR 0012): a repeated placement of a decided
order, or a repeated cancel of a released one, publishes the same answer again, because
Orders asks again only when it never got the first."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shop_common.events import (
    EventPayload,
    EventType,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderRejectedV1,
)

pytestmark = pytest.mark.integration


def stock(observed: Any, product: dict[str, Any]) -> tuple[int, int, int]:
    row = observed.products[product["id"]]
    return row["stock_available"], row["stock_reserved"], row["version"]


@pytest.fixture
def apply_twice(apply_event: Any, observe: Any) -> Any:
    """Apply the event, observe, apply it again: returns what the first application left,
    after checking the second left every row exactly as it was, and published nothing but,
    when `answered_again`, the latest answer once more."""

    async def run(
        event_type: str,
        payload: EventPayload,
        order_id: uuid.UUID,
        products: list[str],
        *,
        answered_again: bool = False,
    ) -> Any:
        await apply_event(event_type, payload)
        first = await observe(order_id, products)
        await apply_event(event_type, payload)
        second = await observe(order_id, products)
        assert (second.products, second.reservation) == (first.products, first.reservation)
        assert second.outbox == first.outbox + (first.outbox[-1:] if answered_again else [])
        return first

    return run


async def test_order_placed_reserves_every_line_once(
    placed: Any, new_product: Any, apply_twice: Any, observe: Any
) -> None:
    a, b = await new_product(stock_available=5), await new_product(stock_available=3)
    order_id = uuid.uuid4()
    event = placed(order_id, (b["id"], 3), (a["id"], 2))
    after = await apply_twice(
        EventType.ORDER_PLACED_V1, event, order_id, [a["id"], b["id"]], answered_again=True
    )
    assert stock(after, a) == (3, 2, 2)
    assert stock(after, b) == (0, 3, 2)
    lines = sorted(
        [{"product_id": a["id"], "quantity": 2}, {"product_id": b["id"], "quantity": 3}],
        key=lambda line: line["product_id"],
    )
    assert after.reservation["status"] == "RESERVED"
    assert after.reservation["lines"] == lines  # the stored shape is the event's
    assert after.outbox == [
        (EventType.STOCK_RESERVED_V1, {"order_id": str(order_id), "lines": lines})
    ]


async def test_order_placed_that_cannot_be_met_is_rejected_once_and_reserves_nothing(
    placed: Any,
    client: Any,
    admin: dict[str, str],
    new_product: Any,
    apply_twice: Any,
    observe: Any,
) -> None:
    fine = await new_product(stock_available=5)
    short = await new_product(stock_available=1)
    inactive = await new_product(stock_available=5)
    assert (await client.delete(f"/v1/products/{inactive['id']}", headers=admin)).status_code == 204
    unknown = str(uuid.uuid4())
    ids = [fine["id"], short["id"], inactive["id"]]
    order_id = uuid.uuid4()
    before = await observe(order_id, ids)
    event = placed(order_id, (fine["id"], 2), (short["id"], 3), (inactive["id"], 1), (unknown, 1))
    after = await apply_twice(EventType.ORDER_PLACED_V1, event, order_id, ids, answered_again=True)
    assert after.products == before.products
    assert (after.reservation["status"], after.reservation["lines"]) == ("REJECTED", [])
    [(event_type, payload)] = after.outbox
    assert event_type == EventType.STOCK_REJECTED_V1
    reasons = {line["product_id"]: line["reason"] for line in payload["lines"]}
    assert reasons == {
        fine["id"]: None,
        short["id"]: "insufficient_stock",
        inactive["id"]: "inactive",
        unknown: "unknown_product",
    }


async def test_order_cancelled_after_reservation_releases_once(
    placed: Any, new_product: Any, apply_event: Any, apply_twice: Any
) -> None:
    a, b = await new_product(stock_available=5), await new_product(stock_available=3)
    order_id = uuid.uuid4()
    await apply_event(EventType.ORDER_PLACED_V1, placed(order_id, (a["id"], 2), (b["id"], 3)))
    cancelled = OrderCancelledV1(order_id=order_id, reason="customer")
    after = await apply_twice(
        EventType.ORDER_CANCELLED_V1, cancelled, order_id, [a["id"], b["id"]], answered_again=True
    )
    assert stock(after, a) == (5, 0, 3)
    assert stock(after, b) == (3, 0, 3)
    assert after.reservation["status"] == "RELEASED"
    [reserved, released] = after.outbox
    assert reserved[0] == EventType.STOCK_RESERVED_V1
    assert released == (EventType.STOCK_RELEASED_V1, reserved[1])  # the same lines back


async def test_order_cancelled_before_placement_leaves_a_tombstone_once(
    new_product: Any, apply_twice: Any
) -> None:
    product = await new_product(stock_available=5)
    order_id = uuid.uuid4()
    cancelled = OrderCancelledV1(order_id=order_id)
    after = await apply_twice(EventType.ORDER_CANCELLED_V1, cancelled, order_id, [product["id"]])
    assert stock(after, product) == (5, 0, 1)
    assert (after.reservation["status"], after.reservation["lines"]) == ("CANCELLED", [])
    assert after.outbox == []


async def test_a_placement_after_the_tombstone_reserves_nothing(
    placed: Any, new_product: Any, apply_event: Any, apply_twice: Any, observe: Any
) -> None:
    product = await new_product(stock_available=5)
    order_id = uuid.uuid4()
    await apply_event(EventType.ORDER_CANCELLED_V1, OrderCancelledV1(order_id=order_id))
    tombstone = await observe(order_id, [product["id"]])
    late = placed(order_id, (product["id"], 1))
    assert (
        await apply_twice(EventType.ORDER_PLACED_V1, late, order_id, [product["id"]]) == tombstone
    )


@pytest.mark.parametrize(
    ("event_type", "settled", "quantity", "status"),
    [
        (EventType.ORDER_CONFIRMED_V1, OrderConfirmedV1, 2, "RESERVED"),
        (EventType.ORDER_REJECTED_V1, OrderRejectedV1, 9, "REJECTED"),
    ],
)
async def test_a_settled_order_changes_nothing_in_catalog(
    placed: Any,
    new_product: Any,
    apply_event: Any,
    apply_twice: Any,
    observe: Any,
    event_type: str,
    settled: type[OrderConfirmedV1 | OrderRejectedV1],
    quantity: int,
    status: str,
) -> None:
    product = await new_product(stock_available=5)
    order_id = uuid.uuid4()
    await apply_event(EventType.ORDER_PLACED_V1, placed(order_id, (product["id"], quantity)))
    before = await observe(order_id, [product["id"]])
    assert before.reservation["status"] == status
    payload = settled(order_id=order_id, reason="test")
    assert await apply_twice(event_type, payload, order_id, [product["id"]]) == before

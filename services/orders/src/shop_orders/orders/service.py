"""Order rules: idempotent placement, visibility and cancellation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.auth import Principal
from shop_common.db.pagination import Keyset, Page, page_of
from shop_common.errors import Forbidden
from shop_common.events import EventType, OrderCancelledV1, OrderLineV1, OrderPlacedV1
from shop_orders.errors import IdempotencyKeyInFlight, OrderNotCancellable, OrderNotFound
from shop_orders.idempotency import service as idempotency
from shop_orders.messaging import outbox
from shop_orders.orders import repository as repo
from shop_orders.orders.models import Order, OrderLine, OrderStatus
from shop_orders.orders.pricing import Pricer
from shop_orders.orders.schemas import OrderCreate, OrderOut
from shop_orders.settings import OrdersSettings


@dataclass(frozen=True, slots=True)
class Placement:
    status: int
    body: dict[str, object]
    replayed: bool


async def place_order(
    session: AsyncSession,
    pricer: Pricer,
    settings: OrdersSettings,
    *,
    principal: Principal,
    key: str,
    body: OrderCreate,
) -> Placement:
    claim = idempotency.Claim(
        customer_id=principal.subject,
        key=key,
        fingerprint=idempotency.fingerprint("POST", "/v1/orders", body.model_dump(mode="json")),
    )
    stored = await idempotency.claim(
        session,
        claim,
        ttl_seconds=settings.idempotency_ttl_seconds,
        claim_seconds=settings.idempotency_claim_seconds,
    )
    if stored is not None:
        return Placement(stored.status, stored.body, replayed=True)
    completed = False
    try:
        priced = await pricer.price(session, body.lines)
        async with session.begin():
            order = await repo.add_order(
                session,
                Order(
                    customer_id=principal.subject,
                    status=OrderStatus.PENDING,
                    total_cents=priced.total_cents,
                    currency=priced.currency,
                    pricing_source=priced.source,
                    lines=[
                        OrderLine(
                            line_no=n,
                            product_id=line.product_id,
                            sku=line.sku,
                            name=line.name,
                            unit_price_cents=line.unit_price_cents,
                            quantity=line.quantity,
                        )
                        for n, line in enumerate(priced.lines, start=1)
                    ],
                ),
            )
            await outbox.enqueue(
                session,
                EventType.ORDER_PLACED_V1,
                OrderPlacedV1(
                    order_id=order.id,
                    customer_id=order.customer_id,
                    lines=tuple(
                        OrderLineV1(product_id=line.product_id, quantity=line.quantity)
                        for line in order.lines
                    ),
                ),
                subject=order.id,
            )
            response = idempotency.StoredResponse(
                status=201, body=OrderOut.model_validate(order).model_dump(mode="json")
            )
            if not await idempotency.complete(session, claim, response, order.id):
                # Our claim expired and a retry took the key over: it will answer instead.
                raise IdempotencyKeyInFlight(
                    "A retry of this request took over its Idempotency-Key; retry shortly.",
                    headers={"Retry-After": "1"},
                )
        completed = True
        return Placement(response.status, response.body, replayed=False)
    finally:
        if not completed:
            await idempotency.release(session, claim)


async def get_visible_order(session: AsyncSession, principal: Principal, order_id: UUID) -> Order:
    """The order if `principal` may see it; 404 otherwise (no existence leak)."""
    order = await repo.get_order(session, order_id)
    if order is None or not _may_see(principal, order):
        raise OrderNotFound(f"No order {order_id}.")
    return order


async def list_orders(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    before: Keyset | None,
    customer_id: str | None,
    status: OrderStatus | None,
) -> Page[OrderOut]:
    if not principal.is_admin:
        if customer_id not in (None, principal.subject):
            raise Forbidden("Customers can list their own orders only.")
        customer_id = principal.subject
    rows = await repo.list_orders(
        session, limit=limit + 1, before=before, customer_id=customer_id, status=status
    )
    return page_of(OrderOut, rows, limit)


CANCELLABLE = {OrderStatus.PENDING, OrderStatus.CONFIRMED}


async def cancel_order(session: AsyncSession, principal: Principal, order_id: UUID) -> Order:
    """PENDING or CONFIRMED -> CANCELLED (once); repeating returns the same result."""
    async with session.begin():
        order = await repo.get_order(session, order_id, for_update=True)
        if order is None or not _may_see(principal, order):
            raise OrderNotFound(f"No order {order_id}.")
        if order.status == OrderStatus.CANCELLED:
            return order
        if order.status not in CANCELLABLE:
            raise OrderNotCancellable(f"A {order.status} order cannot be cancelled.")
        await _cancel(
            session, order, f"cancelled by {'admin' if principal.is_admin else 'customer'}"
        )
        await session.flush()
        await session.refresh(order)
        return order


async def cancel_stale_pending(session: AsyncSession, *, older_than: timedelta) -> int:
    """Cancel PENDING orders whose reservation never came back (e.g. its event was parked).

    Cancelling, not rejecting: the cancel event makes Catalog release a reservation it may
    still make, or leave a tombstone so that a late placement reserves nothing.
    """
    async with session.begin():
        stale = await repo.lock_stale_pending(session, older_than=older_than, limit=100)
        for order in stale:
            await _cancel(session, order, "timed out waiting for a stock reservation")
        return len(stale)


async def _cancel(session: AsyncSession, order: Order, reason: str) -> None:
    order.status = OrderStatus.CANCELLED
    order.status_reason = reason
    repo.touch(order)
    await outbox.enqueue(
        session,
        EventType.ORDER_CANCELLED_V1,
        OrderCancelledV1(order_id=order.id, reason=reason),
        subject=order.id,
    )


def _may_see(principal: Principal, order: Order) -> bool:
    return principal.is_admin or order.customer_id == principal.subject

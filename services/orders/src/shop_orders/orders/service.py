"""Order use cases: idempotent placement, visibility, cancellation and the saga's outcomes.

Each function the router or the worker's housekeeping calls is a unit of work: it begins
its transactions here, visibly (ADR 0010). `confirm_order` and `reject_order` are called
by event handlers and run inside the consumer's inbox transaction instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.auth import Principal
from shop_common.db import DriverPool, Keyset, Page, page_of
from shop_common.errors import Forbidden
from shop_common.http import UpstreamUnavailable
from shop_orders import metrics
from shop_orders.catalog_client.client import CatalogClient
from shop_orders.errors import IdempotencyKeyInFlight, OrderNotFound
from shop_orders.idempotency import service as idempotency
from shop_orders.idempotency.service import StoredResponse
from shop_orders.messaging import outbox
from shop_orders.orders import pricing
from shop_orders.orders import repository as repo
from shop_orders.orders.models import Order, OrderEvent, OrderStatus, PricingSource
from shop_orders.orders.schemas import LineIn, OrderCreate, OrderOut, PlacedOrderBody
from shop_orders.replica import repository as replica
from shop_orders.settings import OrdersSettings

log = logging.getLogger(__name__)


async def place_order(
    driver: DriverPool,
    session: AsyncSession,
    catalog: CatalogClient,
    settings: OrdersSettings,
    *,
    principal: Principal,
    key: str,
    body: OrderCreate,
) -> StoredResponse:
    """201 with the new PENDING order; a repeated key gets the first answer again.

    Two statements on the driver pool, each its own unit of work (ADR 0015): the claim,
    committed at once so that a duplicate sees it (ADR 0004), and, once Catalog has priced
    the lines, the order with its lines, its event and the stored response together.
    """
    claim = idempotency.Claim(
        customer_id=principal.subject,
        key=key,
        fingerprint=idempotency.fingerprint("POST", "/v1/orders", body.model_dump(mode="json")),
    )
    replay = await idempotency.claim(
        driver,
        claim,
        ttl_seconds=settings.idempotency_ttl_seconds,
        claim_seconds=settings.idempotency_claim_seconds,
    )
    if replay is not None:
        return replay
    try:
        # No transaction is open while Catalog is asked: it may take seconds.
        priced = await _price(session, catalog, body.lines, settings)
        order, placed = Order.place(
            principal.subject, priced.lines, currency=priced.currency, pricing_source=priced.source
        )
        _, event_row = outbox.prepare(placed.type, placed.payload, subject=placed.subject)
        stored = await repo.insert_placed(
            driver,
            order,
            claim=claim,
            response_body=PlacedOrderBody.model_validate(order).model_dump(mode="json"),
            event_row=event_row,
            notify_channel=outbox.channel,
        )
        if stored is not None:
            metrics.order_placed(priced.source)
            return idempotency.StoredResponse(201, stored, order.id)
        # Nothing written: a retry took the key over, or the connection dropped after our
        # statement committed and its repeat found the key answered (then it is our answer).
        mine = await idempotency.answer_of(driver, claim)
        if mine is None:
            metrics.key_repeated("in_flight")
            raise IdempotencyKeyInFlight(
                "A retry of this request took over its Idempotency-Key; retry shortly.",
                headers={"Retry-After": "1"},
            )
        metrics.order_placed(priced.source)
        return mine
    except BaseException:
        # Whatever went wrong (422, 503, a bug, a cancelled request), the client may retry;
        # a claim already answered is not released.
        await idempotency.release(driver, claim)
        raise


async def _price(
    session: AsyncSession, catalog: CatalogClient, lines: Sequence[LineIn], settings: OrdersSettings
) -> pricing.PricedOrder:
    """Live from Catalog; from the local replica when Catalog cannot be reached (or 503)."""
    ids = [line.product_id for line in lines]
    try:
        live = await catalog.get_products(ids)
    except UpstreamUnavailable as exc:
        log.warning("pricing from the replica: catalog unavailable (%s)", exc)
        metrics.REPLICA_FALLBACKS.inc()
        async with session.begin():
            copies = await replica.get_products(session, ids)
        retry_after = pricing.retry_after(exc, settings.unavailable_retry_after_seconds)
        return pricing.price_from_replica(lines, copies, retry_after_seconds=retry_after)
    return pricing.price(lines, live, PricingSource.CATALOG)


async def get_visible_order(session: AsyncSession, principal: Principal, order_id: UUID) -> Order:
    """The order if `principal` may see it; 404 otherwise (no existence leak)."""
    async with session.begin():
        return await _visible_order(session, principal, order_id)


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
    async with session.begin():
        rows = await repo.list_orders(
            session, limit=limit + 1, before=before, customer_id=customer_id, status=status
        )
        return page_of(OrderOut, rows, limit)


async def cancel_order(session: AsyncSession, principal: Principal, order_id: UUID) -> Order:
    """PENDING or CONFIRMED -> CANCELLED (once); repeating returns the same result."""
    async with session.begin():
        order = await _visible_order(session, principal, order_id, for_update=True)
        who = "admin" if principal.is_admin else "customer"
        await _cancel(session, order, f"cancelled by {who}")
        return await repo.reload(session, order)


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


async def confirm_order(session: AsyncSession, order_id: UUID) -> None:
    """Catalog reserved the order's stock. In the caller's transaction; a repeat is a no-op."""
    order = await repo.get_order(session, order_id, for_update=True, lines=False)
    if order is None:
        log.warning("stock reserved for unknown order %s", order_id)
        return
    await _emit(session, order.confirm())


async def reject_order(session: AsyncSession, order_id: UUID, reason: str) -> None:
    """Catalog could not reserve the stock. In the caller's transaction; a repeat is a no-op."""
    order = await repo.get_order(session, order_id, for_update=True, lines=False)
    if order is None:
        log.warning("stock rejected for unknown order %s", order_id)
        return
    await _emit(session, order.reject(reason))


async def _cancel(session: AsyncSession, order: Order, reason: str) -> None:
    """The one way a locked order is cancelled, by a person (API) or by the sweeper."""
    was, event = order.status, order.cancel(reason)
    await _emit(session, event)
    if event is not None:
        metrics.order_left(session, was=was, status=order.status, placed_at=order.created_at)


async def _emit(session: AsyncSession, event: OrderEvent | None) -> None:
    """Outbox the event of a transition, in the transaction that makes the change."""
    if event is not None:
        await outbox.enqueue(session, event.type, event.payload, subject=event.subject)


async def _visible_order(
    session: AsyncSession, principal: Principal, order_id: UUID, *, for_update: bool = False
) -> Order:
    order = await repo.get_order(session, order_id, for_update=for_update)
    if order is None or not (principal.is_admin or order.customer_id == principal.subject):
        raise OrderNotFound(f"No order {order_id}.")
    return order

"""Order use cases: idempotent placement, visibility, cancellation and the saga's outcomes.

Each function the router or the worker's housekeeping calls is a unit of work: it begins
its transactions here, visibly (ADR 0010). `confirm_order`, `reject_order` and
`record_release` are called by event handlers and run inside the consumer's inbox
transaction instead. The saga's sweeper and reconciler (ADR 0012) chase Catalog for
answers through `chase_pending` and `chase_unreleased_cancels`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.auth import Principal
from shop_common.db import DriverPool, Keyset, Page, page_of
from shop_common.errors import Forbidden
from shop_common.http import UpstreamUnavailable
from shop_orders import metrics
from shop_orders.catalog_client.client import CatalogClient
from shop_orders.errors import IdempotencyKeyInFlight, OrderNotFound
from shop_orders.idempotency import service as idempotency
from shop_orders.idempotency.service import StoredResponse
from shop_orders.messaging import OUTBOX, outbox
from shop_orders.orders import pricing, saga
from shop_orders.orders import repository as repo
from shop_orders.orders.models import Order, OrderEvent, OrderStatus, PricingSource
from shop_orders.orders.schemas import LineIn, OrderCreate, OrderOut, PlacedOrderBody
from shop_orders.replica import repository as replica
from shop_orders.settings import OrdersSettings

log = logging.getLogger(__name__)
# Orders per transaction of the saga's sweeper and reconciler: short locks, short commits.
SAGA_BATCH = 100


async def place_order(
    driver: DriverPool,
    sessions: async_sessionmaker[AsyncSession],
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
        priced = await _price(sessions, catalog, body.lines, settings)
        order, placed = Order.place(
            principal.subject, priced.lines, currency=priced.currency, pricing_source=priced.source
        )
        _, event_row = outbox.prepare(
            placed.type, placed.payload, subject=placed.subject, event_id=placed.id
        )
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
    sessions: async_sessionmaker[AsyncSession],
    catalog: CatalogClient,
    lines: Sequence[LineIn],
    settings: OrdersSettings,
) -> pricing.PricedOrder:
    """Live from Catalog; from the local replica when Catalog cannot be reached (or 503)."""
    ids = [line.product_id for line in lines]
    try:
        live = await catalog.get_products(ids)
    except UpstreamUnavailable as exc:
        log.warning("pricing from the replica: catalog unavailable (%s)", exc)
        metrics.REPLICA_FALLBACKS.inc()
        async with sessions() as session, session.begin():
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


@dataclass(frozen=True, slots=True)
class SagaRound:
    """What one batch of the saga's sweeper or reconciler did."""

    looked_at: int = 0
    resent: int = 0
    cancelled: int = 0


async def chase_pending(session: AsyncSession, settings: OrdersSettings) -> SagaRound:
    """One batch of the PENDING sweep (ADR 0012): re-send placements Catalog has not
    answered, and cancel the orders Catalog kept not answering while it answered later ones.

    Cancelling, not rejecting: the cancel event makes Catalog release a reservation it may
    still make, or leave a tombstone so that a late placement reserves nothing.
    """
    timing = saga.Timing.of(settings)
    async with session.begin():
        due = await repo.lock_due_pending(session, OUTBOX, limit=SAGA_BATCH)
        requests = {chased.order.id: _latest_request(chased) for chased in due}
        sent = [r.sent_at for r in requests.values() if r.sent_at is not None]
        horizon = None
        if sent:
            horizon = await repo.newest_answered(
                session, created_after=min(sent), answered_before=timing.answer_grace
            )
        resent = cancelled = 0
        for chased in due:
            order = chased.order
            step, next_check_at, order.catalog_answering_since = saga.decide_pending(
                timing,
                requests[order.id],
                now=chased.now,
                answering_since=order.catalog_answering_since,
                answered_horizon=horizon,
            )
            if step is saga.Step.GIVE_UP:
                await _cancel(session, order, "Catalog did not answer within the deadline")
                cancelled += 1
                continue
            if step is saga.Step.RESEND:
                await _emit(session, order.resend_placement())
                resent += 1
            order.next_check_at = next_check_at
    return SagaRound(looked_at=len(due), resent=resent, cancelled=cancelled)


async def chase_unreleased_cancels(session: AsyncSession, settings: OrdersSettings) -> SagaRound:
    """One batch of reconciliation: cancelled orders whose stock Catalog reported reserved
    but never released get their cancel sent again (Catalog releases once, and answers a
    repeated cancel of a released reservation by reporting the release again)."""
    timing = saga.Timing.of(settings)
    async with session.begin():
        due = await repo.lock_unreleased_cancels(session, OUTBOX, limit=SAGA_BATCH)
        resent = 0
        for chased in due:
            step, next_check_at, _ = saga.decide_resend(
                timing, _latest_request(chased), now=chased.now
            )
            if step is saga.Step.RESEND:
                await _emit(session, chased.order.resend_cancel())
                resent += 1
            chased.order.next_check_at = next_check_at
    return SagaRound(looked_at=len(due), resent=resent)


@dataclass(frozen=True, slots=True)
class Overdue:
    """What the saga is still waiting for, counted for reconciliation's report."""

    pending: int  # PENDING for longer than the deadline (Catalog silent, or no traffic)
    unreleased: int  # cancelled, stock reported reserved, no release after one interval


async def count_overdue(session: AsyncSession, settings: OrdersSettings) -> Overdue:
    timing = saga.Timing.of(settings)
    async with session.begin():
        return Overdue(
            pending=await repo.count_pending_older_than(session, timing.deadline),
            unreleased=await repo.count_unreleased_cancels(
                session, cancelled_before=timing.resend_after
            ),
        )


async def count_pending(session: AsyncSession) -> None:
    """Count the PENDING orders for the gauges the PENDING age alert reads (the worker, on a
    timer): how many, and the oldest one's age."""
    async with session.begin():
        count, oldest_age = await repo.pending_backlog(session)
    metrics.pending_counted(count, oldest_age)


def _latest_request(chased: repo.Chased) -> saga.Request:
    """The order's latest request as the rules see it: a row gone from the outbox (or one
    never recorded) was published long ago; creation is the safe lower bound."""
    sent_at = chased.published_at if chased.in_outbox else chased.order.created_at
    return saga.Request(sends=chased.order.catalog_request_sends, sent_at=sent_at)


async def confirm_order(session: AsyncSession, order_id: UUID) -> None:
    """Catalog reserved the order's stock. In the caller's transaction; a repeat is a no-op."""
    order = await repo.lock_status(session, order_id)
    if order is None:
        log.warning("stock reserved for unknown order %s", order_id)
        return
    # Saved even when the order moved no more (cancelled meanwhile): Catalog holds its
    # stock now, and the release is chased from that (ADR 0012).
    was = order.status
    event = order.confirm()
    await repo.save_status(session, order, moved=event is not None)
    if event is not None:
        metrics.order_left(session, was=was, status=order.status, placed_at=order.created_at)
    await _emit(session, event)


async def reject_order(session: AsyncSession, order_id: UUID, reason: str) -> None:
    """Catalog could not reserve the stock. In the caller's transaction; a repeat is a no-op."""
    order = await repo.lock_status(session, order_id)
    if order is None:
        log.warning("stock rejected for unknown order %s", order_id)
        return
    was = order.status
    event = order.reject(reason)
    if event is not None:  # none: a late or repeated outcome
        await repo.save_status(session, order, moved=True)
        metrics.order_left(session, was=was, status=order.status, placed_at=order.created_at)
        await _emit(session, event)


async def record_release(session: AsyncSession, order_id: UUID) -> None:
    """Catalog released the order's stock. In the caller's transaction; a repeat is a no-op."""
    order = await repo.get_order(session, order_id, for_update=True, lines=False)
    if order is None:
        log.warning("stock released for unknown order %s", order_id)
        return
    order.record_stock_released()


async def _cancel(session: AsyncSession, order: Order, reason: str) -> None:
    """The one way a locked order is cancelled, by a person (API) or by the sweeper."""
    was, event = order.status, order.cancel(reason)
    await _emit(session, event)
    if event is not None:
        metrics.order_left(session, was=was, status=order.status, placed_at=order.created_at)


async def _emit(session: AsyncSession, event: OrderEvent | None) -> None:
    """Outbox the event of a transition, in the transaction that makes the change."""
    if event is not None:
        await outbox.enqueue(
            session, event.type, event.payload, subject=event.subject, event_id=event.id
        )


async def _visible_order(
    session: AsyncSession, principal: Principal, order_id: UUID, *, for_update: bool = False
) -> Order:
    order = await repo.get_order(session, order_id, for_update=for_update)
    if order is None or not (principal.is_admin or order.customer_id == principal.subject):
        raise OrderNotFound(f"No order {order_id}.")
    return order

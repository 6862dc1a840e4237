"""The timeline of one order, built from what each service recorded (no database here)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shop_common.events import EventType
from shop_ops.records import EventRecord, ServiceRecords, StateRecord
from shop_ops.settings import Service
from shop_ops.timeline import SagaState, StepKind, build_timeline

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ORDER = uuid.uuid4()
STUCK_AFTER = timedelta(seconds=60)


def ms(n: float) -> datetime:
    return T0 + timedelta(milliseconds=n)


def event(kind: EventType, written: float, published: float | None, **extra) -> EventRecord:
    return EventRecord(
        id=uuid.uuid4(),
        type=str(kind),
        created_at=ms(written),
        published_at=None if published is None else ms(published),
        attempts=extra.get("attempts", 0 if published is None else 1),
        last_error=extra.get("last_error"),
    )


def records(service: Service, status: str | None, *events: EventRecord, now: float = 1000):
    state = None
    if status is not None:
        state = StateRecord(status, None, ms(0), ms(now / 2))
    return ServiceRecords(service, ms(now), state, tuple(events))


def received(**by_service: dict[uuid.UUID, float]):
    return {
        Service(name): {event_id: ms(at) for event_id, at in got.items()}
        for name, got in by_service.items()
    }


def build(orders, catalog, got, stuck_after=STUCK_AFTER):
    return build_timeline(ORDER, orders, catalog, got, stuck_after=stuck_after)


def names(timeline) -> list[tuple[str, str, str]]:
    return [(str(s.service), s.name, s.event_type.split(".")[-2]) for s in timeline.steps]


def test_a_confirmed_order_is_complete_with_every_step_in_order() -> None:
    placed = event(EventType.ORDER_PLACED_V1, 1, 10)
    reserved = event(EventType.STOCK_RESERVED_V1, 31, 40)
    confirmed = event(EventType.ORDER_CONFIRMED_V1, 61, 70)
    timeline = build(
        records(Service.ORDERS, "CONFIRMED", placed, confirmed),
        records(Service.CATALOG, "RESERVED", reserved),
        received(catalog={placed.id: 30, confirmed.id: 90}, orders={reserved.id: 60}),
    )

    assert timeline.state is SagaState.COMPLETE
    assert timeline.waiting is None
    assert names(timeline) == [
        ("orders", "placed", "placed"),  # the order row's time: ms(0)
        ("orders", "published", "placed"),
        ("catalog", "received", "placed"),
        ("catalog", "reserved", "reserved"),
        ("catalog", "published", "reserved"),
        ("orders", "received", "reserved"),
        ("orders", "confirmed", "confirmed"),
        ("orders", "published", "confirmed"),
        ("catalog", "received", "confirmed"),
    ]
    assert timeline.steps[0].at == ms(0)
    assert timeline.steps[0].gap is None
    assert [s.gap for s in timeline.steps[1:4]] == [
        timedelta(milliseconds=10),
        timedelta(milliseconds=20),
        timedelta(milliseconds=1),
    ]
    assert timeline.duration == timedelta(milliseconds=90)


def test_a_rejected_order_follows_catalogs_refusal() -> None:
    placed = event(EventType.ORDER_PLACED_V1, 1, 10)
    refused = event(EventType.STOCK_REJECTED_V1, 31, 40)
    rejected = event(EventType.ORDER_REJECTED_V1, 61, 70)
    timeline = build(
        records(Service.ORDERS, "REJECTED", placed, rejected),
        records(Service.CATALOG, "REJECTED", refused),
        received(catalog={placed.id: 30, rejected.id: 90}, orders={refused.id: 60}),
    )

    assert timeline.state is SagaState.COMPLETE
    written = [s.name for s in timeline.steps if s.kind is StepKind.WRITTEN]
    assert written == ["placed", "reservation rejected", "rejected"]


def test_a_cancel_after_confirmation_waits_until_the_release_reaches_orders() -> None:
    placed = event(EventType.ORDER_PLACED_V1, 1, 10)
    reserved = event(EventType.STOCK_RESERVED_V1, 31, 40)
    confirmed = event(EventType.ORDER_CONFIRMED_V1, 61, 70)
    cancelled = event(EventType.ORDER_CANCELLED_V1, 500, 510)
    released = event(EventType.STOCK_RELEASED_V1, 531, 540)
    orders = records(Service.ORDERS, "CANCELLED", placed, confirmed, cancelled)
    catalog = records(Service.CATALOG, "RELEASED", reserved, released)
    got = {placed.id: 30, confirmed.id: 90, cancelled.id: 530}
    timeline = build(orders, catalog, received(catalog=got, orders={reserved.id: 60}))

    assert timeline.state is SagaState.IN_PROGRESS
    assert timeline.waiting is not None
    assert timeline.waiting.service is Service.ORDERS
    assert timeline.waiting.action == "receive catalog.stock.released.v1"
    assert timeline.waiting.since == ms(540)

    done = received(catalog=got, orders={reserved.id: 60, released.id: 560})
    timeline = build(orders, catalog, done)
    assert timeline.state is SagaState.COMPLETE
    assert [s.name for s in timeline.steps][-4:] == [
        "received",
        "released",
        "published",
        "received",
    ]


def test_an_event_never_published_is_stuck_at_the_relay_with_its_last_error() -> None:
    placed = event(EventType.ORDER_PLACED_V1, 1, None, attempts=3, last_error="unroutable: 312")
    orders = records(Service.ORDERS, "PENDING", placed, now=120_000)

    timeline = build(
        orders, records(Service.CATALOG, None, now=120_000), received(catalog={}, orders={})
    )

    assert timeline.state is SagaState.STUCK
    assert timeline.waiting is not None
    assert timeline.waiting.service is Service.ORDERS
    assert timeline.waiting.action == "publish orders.order.placed.v1"
    assert timeline.waiting.waited == timedelta(milliseconds=120_000 - 1)
    assert "3 attempts" in timeline.waiting.hint
    assert "unroutable: 312" in timeline.waiting.hint
    assert timeline.waiting.event_id == placed.id


def test_a_short_wait_is_in_progress_not_stuck() -> None:
    placed = event(EventType.ORDER_PLACED_V1, 1, 10)
    orders = records(Service.ORDERS, "PENDING", placed, now=500)

    timeline = build(
        orders, records(Service.CATALOG, None, now=500), received(catalog={}, orders={})
    )

    assert timeline.state is SagaState.IN_PROGRESS
    assert timeline.waiting is not None
    assert timeline.waiting.action == "receive orders.order.placed.v1"
    assert timeline.waiting.service is Service.CATALOG
    assert "shop-ops parked list --service catalog" in timeline.waiting.hint
    stuck = build(
        orders,
        records(Service.CATALOG, None, now=500),
        received(catalog={}, orders={}),
        stuck_after=timedelta(0),
    )
    assert stuck.state is SagaState.STUCK


def test_a_resent_placement_that_arrived_supersedes_the_lost_one() -> None:
    lost = event(EventType.ORDER_PLACED_V1, 1, 10)
    resent = event(EventType.ORDER_PLACED_V1, 100, 110)
    refused = event(EventType.STOCK_REJECTED_V1, 131, 140)
    rejected = event(EventType.ORDER_REJECTED_V1, 161, 170)
    timeline = build(
        records(Service.ORDERS, "REJECTED", lost, resent, rejected),
        records(Service.CATALOG, "REJECTED", refused),
        received(catalog={resent.id: 130, rejected.id: 190}, orders={refused.id: 160}),
    )

    assert timeline.state is SagaState.COMPLETE


def test_a_delivered_placement_without_an_answer_waits_on_catalog() -> None:
    placed = event(EventType.ORDER_PLACED_V1, 1, 10)
    timeline = build(
        records(Service.ORDERS, "PENDING", placed, now=90_000),
        records(Service.CATALOG, "NEW", now=90_000),
        received(catalog={placed.id: 30}, orders={}),
    )

    assert timeline.state is SagaState.STUCK
    assert timeline.waiting is not None
    assert timeline.waiting.action == "reserve or reject the stock"
    assert "reservation NEW" in timeline.waiting.hint


def test_a_received_cancel_with_stock_still_held_waits_on_the_release() -> None:
    placed = event(EventType.ORDER_PLACED_V1, 1, 10)
    reserved = event(EventType.STOCK_RESERVED_V1, 31, 40)
    cancelled = event(EventType.ORDER_CANCELLED_V1, 50, 55)
    timeline = build(
        records(Service.ORDERS, "CANCELLED", placed, cancelled, now=90_000),
        records(Service.CATALOG, "RESERVED", reserved, now=90_000),
        received(catalog={placed.id: 30, cancelled.id: 70}, orders={reserved.id: 60}),
    )

    assert timeline.waiting is not None
    assert timeline.waiting.action == "release the reservation"
    assert timeline.state is SagaState.STUCK


def test_an_order_nobody_knows_is_not_found() -> None:
    timeline = build(
        records(Service.ORDERS, None),
        records(Service.CATALOG, None),
        received(catalog={}, orders={}),
    )
    assert timeline.state is SagaState.NOT_FOUND
    assert timeline.steps == ()


def test_an_order_past_the_outbox_retention_says_why_its_events_are_gone() -> None:
    timeline = build(
        records(Service.ORDERS, "CONFIRMED"),
        records(Service.CATALOG, "RESERVED"),
        received(catalog={}, orders={}),
    )
    assert timeline.state is SagaState.COMPLETE
    assert "OUTBOX_RETENTION_DAYS" in timeline.notes[0]


def test_a_parked_event_is_named_with_the_replay_command() -> None:
    placed = event(EventType.ORDER_PLACED_V1, 1, 10)
    timeline = build(
        records(Service.ORDERS, "PENDING", placed, now=90_000),
        records(Service.CATALOG, None, now=90_000),
        received(catalog={}, orders={}),
    ).with_parked("malformed envelope", "2026-03-01T12:00:00.020000+00:00")

    assert timeline.waiting is not None
    assert timeline.waiting.parked
    assert "catalog.events.parking" in timeline.waiting.hint
    assert f"shop-ops parked replay --service catalog {placed.id}" in timeline.waiting.hint

"""`order ORDER_ID`: read what both services recorded about one order and build its timeline."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import aiormq

from shop_common.messaging import list_parked
from shop_ops.database import read_only
from shop_ops.records import read_receipts, read_records
from shop_ops.settings import Service, Target
from shop_ops.timeline import Timeline, build_timeline


async def order_timeline(
    targets: dict[Service, Target],
    order_id: uuid.UUID,
    *,
    stuck_after: timedelta,
    look_in_parking: bool = True,
) -> Timeline:
    """Each service read through its own role; joined here by event id.

    When the order waits for a service to receive an event, that service's parking queue
    is looked through (one pass, which leaves it as it was) to say whether it is parked.
    """
    async with (
        read_only(targets[Service.ORDERS]) as orders_db,
        read_only(targets[Service.CATALOG]) as catalog_db,
    ):
        orders = await read_records(orders_db, Service.ORDERS, order_id)
        catalog = await read_records(catalog_db, Service.CATALOG, order_id)
        received = {
            Service.CATALOG: await read_receipts(
                catalog_db, Service.CATALOG, [e.id for e in orders.events]
            ),
            Service.ORDERS: await read_receipts(
                orders_db, Service.ORDERS, [e.id for e in catalog.events]
            ),
        }
    timeline = build_timeline(order_id, orders, catalog, received, stuck_after=stuck_after)
    waiting = timeline.waiting
    if look_in_parking and waiting is not None and waiting.action.startswith("receive "):
        target = targets[waiting.service]
        try:
            report = await list_parked(target.amqp_url, target.topology)
        except (aiormq.exceptions.AMQPError, OSError, TimeoutError) as exc:
            # The timeline stands without it: say why the parking queue was not looked at.
            note = f"Could not look in {target.topology.parking_queue}: {exc!r}"
            return replace(timeline, notes=(*timeline.notes, note))
        for result in report.results:
            if result.message.id == str(waiting.event_id):
                return timeline.with_parked(result.message.reason, result.message.parked_at)
    return timeline

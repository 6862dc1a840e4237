"""Orders' business metrics move with what the API did, and only once it committed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from shop_common.db import create_engine, create_sessionmaker
from shop_orders import metrics
from shop_orders.orders.models import OrderStatus
from shop_orders.orders.service import count_pending
from tests.support import ServiceDb, assert_problem
from tests.support.orders import key_header, order_body

pytestmark = pytest.mark.integration


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _snapshot() -> dict[str, float]:
    return {
        "placed": _value("shop_orders_placed_total", pricing_source="catalog"),
        "replayed": _value("shop_orders_idempotency_key_repeats_total", outcome="replayed"),
        "reused": _value("shop_orders_idempotency_key_repeats_total", outcome="reused"),
        "cancelled": _value("shop_orders_settled_total", status="CANCELLED"),
        "cancel_durations": _value("shop_orders_settle_duration_seconds_count", status="CANCELLED"),
        "after_confirm": _value("shop_orders_cancelled_after_confirm_total"),
    }


def _moved(before: dict[str, float]) -> dict[str, float]:
    after = _snapshot()
    return {name: after[name] - before[name] for name in before if after[name] != before[name]}


def test_settled_statuses_are_the_ones_an_order_leaves_pending_for() -> None:
    assert set(metrics.SETTLED_STATUSES) == {
        str(s) for s in OrderStatus if s is not OrderStatus.PENDING
    }


async def test_placements_and_repeated_keys_are_counted(
    client: httpx.AsyncClient, make_token: Callable[..., str], new_product: Any
) -> None:
    headers = {
        "Authorization": f"Bearer {make_token(f'm-{uuid.uuid4().hex[:8]}', 'customer')}",
        **key_header(),
    }
    product = await new_product()
    before = _snapshot()
    first = await client.post("/v1/orders", json=order_body((product["id"], 1)), headers=headers)
    again = await client.post("/v1/orders", json=order_body((product["id"], 1)), headers=headers)
    other = await client.post("/v1/orders", json=order_body((product["id"], 2)), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert_problem(other, 422)
    assert _moved(before) == {"placed": 1, "replayed": 1, "reused": 1}


async def test_a_cancel_of_a_pending_order_is_its_outcome_and_counts_once(
    client: httpx.AsyncClient, customer: dict[str, str], new_product: Any
) -> None:
    product = await new_product()
    placed = await client.post(
        "/v1/orders", json=order_body((product["id"], 1)), headers={**customer, **key_header()}
    )
    assert placed.status_code == 201, placed.text
    before = _snapshot()
    url = f"/v1/orders/{placed.json()['id']}/cancel"
    assert (await client.post(url, headers=customer)).status_code == 200
    assert (await client.post(url, headers=customer)).status_code == 200  # a repeat: no change
    assert _moved(before) == {"cancelled": 1, "cancel_durations": 1}


async def test_the_worker_counts_pending_orders_and_the_oldest_ones_age(
    client: httpx.AsyncClient,
    customer: dict[str, str],
    new_product: Any,
    orders_db: ServiceDb,
    db: asyncpg.Connection,
) -> None:
    product = await new_product()
    placed = await client.post(
        "/v1/orders", json=order_body((product["id"], 1)), headers={**customer, **key_header()}
    )
    assert placed.status_code == 201, placed.text
    order_id = uuid.UUID(placed.json()["id"])
    await db.execute(
        "UPDATE orders.orders SET created_at = now() - interval '1 hour' WHERE id = $1", order_id
    )
    engine = create_engine(orders_db.url, schema=orders_db.schema, application_name="gauge-test")
    try:
        async with create_sessionmaker(engine)() as session:
            await count_pending(session)
    finally:
        await engine.dispose()
        await client.post(f"/v1/orders/{order_id}/cancel", headers=customer)
    assert _value("shop_orders_pending") >= 1
    assert _value("shop_orders_pending_oldest_age_seconds") >= 3600

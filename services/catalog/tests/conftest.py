"""Catalog test fixtures: `client` is the real Catalog app over ASGI (see the root conftest);
`apply_event` runs a handler of Orders' events in a real session, `observe` reads back
what it touched."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_catalog.events.handlers import HANDLERS
from shop_catalog.settings import CatalogSettings
from shop_common.events import EventPayload, OrderLineV1, OrderPlacedV1, parse_payload
from shop_common.messaging import Envelope
from tests.support.sessions import role_sessions


@pytest.fixture
def client(catalog_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return catalog_client


def product_body(**overrides: Any) -> dict[str, Any]:
    """A valid create body with a unique sku: every test owns its data."""
    body: dict[str, Any] = {
        "sku": f"SKU-{uuid.uuid4().hex[:12]}",
        "name": "Test widget",
        "description": "A thing for tests",
        "price_cents": 1299,
        "currency": "EUR",
        "stock_available": 10,
    }
    body.update(overrides)
    return body


NewProduct = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def new_product(client: httpx.AsyncClient, admin: dict[str, str]) -> NewProduct:
    async def create(**overrides: Any) -> dict[str, Any]:
        response = await client.post("/v1/products", json=product_body(**overrides), headers=admin)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return create


@pytest.fixture(scope="session")
async def catalog_sessions(
    catalog_settings: CatalogSettings,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions as the Catalog worker opens them: its own role, its own schema."""
    # Only the concurrency test needs many connections at once.
    async with role_sessions(
        catalog_settings.database_url,
        catalog_settings.db_schema,
        name="catalog-tests",
        pool_size=2,
        max_overflow=14,
    ) as sessions:
        yield sessions


ApplyEvent = Callable[[str, EventPayload], Awaitable[None]]


@pytest.fixture
def apply_event(catalog_sessions: async_sessionmaker[AsyncSession]) -> ApplyEvent:
    """Run the handler of an event type as the consumer does, minus the inbox.

    The payload is read back from its wire form, and the handler runs in one transaction
    that commits. The inbox is left out on purpose: it would skip a repeated event before
    the handler sees it, and these tests are about the handler staying harmless anyway.
    """

    async def apply(event_type: str, payload: EventPayload) -> None:
        data = payload.to_event_data()
        envelope = Envelope(
            id=uuid.uuid4(),
            source="/orders",
            type=event_type,
            subject=str(data["order_id"]),
            time=datetime.now(UTC),
            data=data,
        )
        async with catalog_sessions() as session, session.begin():
            await HANDLERS[event_type](session, envelope, parse_payload(event_type, data))

    return apply


@dataclass(frozen=True)
class Observed:
    """Everything a Catalog handler may change for one order, read as stored."""

    products: dict[str, dict[str, Any]]  # id -> stock_available, stock_reserved, version, ...
    reservation: dict[str, Any] | None  # status, lines (the raw JSON), updated_at
    outbox: list[tuple[str, dict[str, Any]]]  # (type, payload) of events about the order


Observe = Callable[[uuid.UUID, Sequence[str]], Awaitable[Observed]]


@pytest.fixture
def observe(db: asyncpg.Connection) -> Observe:
    """Read the order's reservation, its events and the given products, through SQL of
    its own (not the code under test)."""

    async def read(order_id: uuid.UUID, product_ids: Sequence[str]) -> Observed:
        products = await db.fetch(
            "SELECT id, stock_available, stock_reserved, version, updated_at"
            " FROM catalog.products WHERE id = ANY($1::uuid[])",
            list(product_ids),
        )
        reservation = await db.fetchrow(
            "SELECT status, lines, updated_at FROM catalog.reservations WHERE order_id = $1",
            order_id,
        )
        outbox = await db.fetch(
            "SELECT type, payload FROM catalog.outbox WHERE subject = $1 ORDER BY seq",
            str(order_id),
        )
        return Observed(
            products={str(row["id"]): dict(row) for row in products},
            reservation=None
            if reservation is None
            else {**reservation, "lines": json.loads(reservation["lines"])},
            outbox=[(row["type"], json.loads(row["payload"])) for row in outbox],
        )

    return read


def _placed(order_id: uuid.UUID, *lines: tuple[str, int]) -> OrderPlacedV1:
    return OrderPlacedV1(
        order_id=order_id,
        customer_id="alice",
        lines=tuple(OrderLineV1(product_id=uuid.UUID(p), quantity=q) for p, q in lines),
    )


@pytest.fixture
def placed() -> Callable[..., OrderPlacedV1]:
    """`placed(order_id, (product_id, quantity), ...)`: an `orders.order.placed.v1` payload."""
    return _placed

"""Message contracts between the services: docs/asyncapi.yaml, held to both sides.

- The document is the event registry's, and valid AsyncAPI 3.
- Producers: the events each service's own code writes to its outbox (real API calls and
  real handlers, on real PostgreSQL) match the document, every type each service owns.
- Consumers: each service's handlers accept every example the document allows, for every
  type they consume (with only the required fields; with every field and one unknown).

A field renamed in a payload model fails here the way a renamed HTTP field fails the pact.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from jsonschema import Draft7Validator
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_catalog.events.handlers import HANDLERS as CATALOG_HANDLERS
from shop_catalog.settings import CatalogSettings
from shop_common.events import (
    PAYLOAD_MODELS,
    EventPayload,
    EventType,
    OrderCancelledV1,
    OrderLineV1,
    OrderPlacedV1,
    RejectedLineV1,
    StockLineV1,
    StockRejectedV1,
    StockReservedV1,
    parse_payload,
)
from shop_common.messaging import Envelope, Handler
from shop_orders.events.handlers import HANDLERS as ORDERS_HANDLERS
from shop_orders.main import create_app as create_orders_app
from shop_orders.settings import OrdersSettings
from tests.contract.event_contract import (
    CONSUMERS,
    READS,
    REGENERATE,
    checked_in,
    examples,
    generated,
    missing_reads,
    owned_types,
    payload_validator,
)
from tests.support import TEST_JWT_SECRET, ServiceDb
from tests.support.sessions import role_sessions

ASYNCAPI_SCHEMA = Path(__file__).with_name("schemas") / "asyncapi-3.0.0.json"
HANDLERS: dict[str, dict[str, Handler]] = {"catalog": CATALOG_HANDLERS, "orders": ORDERS_HANDLERS}


def test_the_checked_in_document_is_the_registrys() -> None:
    assert checked_in() == generated(), f"docs/asyncapi.yaml is stale: run `{REGENERATE}`"


def test_the_document_is_valid_asyncapi_3() -> None:
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(checked_in()), key=str)
    assert not errors, "\n".join(e.message for e in errors[:5])


@pytest.mark.parametrize("consumer", sorted(READS))
def test_what_consumers_read_is_in_the_document(consumer: str) -> None:
    assert set(READS[consumer]) == set(CONSUMERS[consumer]), "a handled type without READS"
    missing = {t: m for t, fields in READS[consumer].items() if (m := missing_reads(t, fields))}
    assert not missing, f"{consumer} reads fields the producer no longer sends: {missing}"


def test_every_event_type_is_consumed() -> None:
    """Publishing is mandatory: a type nobody binds stays in the outbox."""
    consumed = {t for types in CONSUMERS.values() for t in types}
    assert consumed == set(PAYLOAD_MODELS)


# --- producers ---------------------------------------------------------------------------


Sessions = Callable[[], AbstractAsyncContextManager[async_sessionmaker[AsyncSession]]]


async def _apply(
    sessions: async_sessionmaker[AsyncSession], service: str, event_type: str, data: dict[str, Any]
) -> None:
    """Run the consumer's handler of `event_type` on `data`, in a transaction that commits."""
    envelope = _envelope(event_type, data)
    async with sessions() as session, session.begin():
        await HANDLERS[service][event_type](session, envelope, parse_payload(event_type, data))


def _envelope(event_type: str, data: dict[str, Any]) -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        source="/" + event_type.split(".", 1)[0],
        type=event_type,
        subject=str(data.get("order_id") or data.get("id")),
        time=datetime.now(UTC),
        data=data,
    )


async def _outbox(db: asyncpg.Connection, schema: str, subjects: list[str]) -> list[Any]:
    rows = await db.fetch(
        f"SELECT type, payload FROM {schema}.outbox WHERE subject = ANY($1) ORDER BY seq",
        subjects,
    )
    return [(row["type"], json.loads(row["payload"])) for row in rows]


def _assert_match_the_contract(events: list[Any], service: str) -> None:
    for event_type, payload in events:
        errors = [e.message for e in payload_validator(event_type).iter_errors(payload)]
        assert not errors, f"{service} wrote a {event_type} the contract refuses: {errors}"
    assert {t for t, _ in events} == owned_types(service), "not every type was produced"


def _data(payload: EventPayload) -> dict[str, Any]:
    return payload.to_event_data()


@pytest.fixture(scope="module")
async def catalog_sessions(catalog_settings: CatalogSettings) -> AsyncIterator[Any]:
    async with role_sessions(
        catalog_settings.database_url, catalog_settings.db_schema, name="contract-catalog"
    ) as sessions:
        yield sessions


@pytest.fixture(scope="module")
async def orders_sessions(orders_db: ServiceDb) -> AsyncIterator[Any]:
    async with role_sessions(orders_db.url, orders_db.schema, name="contract-orders") as sessions:
        yield sessions


@pytest.fixture(scope="module")
def orders_db(provision_service: Callable[[str], ServiceDb]) -> ServiceDb:
    return provision_service("orders")


@pytest.fixture(scope="module")
async def orders_client(
    orders_db: ServiceDb, amqp_url: str, catalog_app: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    settings = OrdersSettings(
        database_url=orders_db.url,
        amqp_url=SecretStr(amqp_url),
        jwt_secret=SecretStr(TEST_JWT_SECRET),
        catalog_url="http://catalog.test",
    )
    app = create_orders_app(settings, catalog_transport=httpx.ASGITransport(app=catalog_app))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders.test") as c:
            yield c


async def _new_product(catalog: httpx.AsyncClient, admin: dict[str, str], stock: int) -> str:
    body = {
        "sku": f"EVT-{uuid.uuid4().hex[:12]}",
        "name": "Contract product",
        "price_cents": 250,
        "currency": "EUR",
        "stock_available": stock,
    }
    response = await catalog.post("/v1/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    product_id: str = response.json()["id"]
    return product_id


@pytest.mark.integration
async def test_catalog_writes_what_the_contract_says(
    catalog_client: httpx.AsyncClient,
    admin: dict[str, str],
    catalog_sessions: async_sessionmaker[AsyncSession],
    db: asyncpg.Connection,
) -> None:
    product = await _new_product(catalog_client, admin, stock=5)
    headers = {**admin, "If-Match": "*"}
    patched = await catalog_client.patch(
        f"/v1/products/{product}", json={"price_cents": 300}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    stocked = await _new_product(catalog_client, admin, stock=5)
    reserved, rejected = uuid.uuid4(), uuid.uuid4()
    for order_id, quantity in ((reserved, 2), (rejected, 50)):
        line = OrderLineV1(product_id=uuid.UUID(stocked), quantity=quantity)
        placed = OrderPlacedV1(order_id=order_id, customer_id="contract", lines=(line,))
        await _apply(catalog_sessions, "catalog", EventType.ORDER_PLACED_V1, _data(placed))
    cancelled = OrderCancelledV1(order_id=reserved, reason="contract")
    await _apply(catalog_sessions, "catalog", EventType.ORDER_CANCELLED_V1, _data(cancelled))
    deleted = await catalog_client.delete(f"/v1/products/{product}", headers=admin)
    assert deleted.status_code == 204, deleted.text

    events = await _outbox(db, "catalog", [product, str(reserved), str(rejected)])
    _assert_match_the_contract(events, "catalog")


@pytest.mark.integration
async def test_orders_writes_what_the_contract_says(
    catalog_client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    admin: dict[str, str],
    customer: dict[str, str],
    orders_sessions: async_sessionmaker[AsyncSession],
    db: asyncpg.Connection,
) -> None:
    product = await _new_product(catalog_client, admin, stock=5)
    orders = []
    for _ in range(2):
        headers = {**customer, "Idempotency-Key": str(uuid.uuid4())}
        body = {"lines": [{"product_id": product, "quantity": 1}]}
        response = await orders_client.post("/v1/orders", json=body, headers=headers)
        assert response.status_code == 201, response.text
        orders.append(uuid.UUID(response.json()["id"]))
    confirmed, rejected = orders
    line = StockLineV1(product_id=uuid.UUID(product), quantity=1)
    reserved = StockReservedV1(order_id=confirmed, lines=(line,))
    await _apply(orders_sessions, "orders", EventType.STOCK_RESERVED_V1, _data(reserved))
    refused = StockRejectedV1(
        order_id=rejected,
        lines=(RejectedLineV1(product_id=line.product_id, quantity=1, reason="inactive"),),
    )
    await _apply(orders_sessions, "orders", EventType.STOCK_REJECTED_V1, _data(refused))
    cancel = await orders_client.post(f"/v1/orders/{confirmed}/cancel", headers=customer)
    assert cancel.status_code == 200, cancel.text

    events = await _outbox(db, "orders", [str(o) for o in orders])
    _assert_match_the_contract(events, "orders")


# --- consumers ---------------------------------------------------------------------------


CONSUMED = [(service, t) for service, types in CONSUMERS.items() for t in types]


@pytest.mark.integration
@pytest.mark.parametrize(("service", "event_type"), CONSUMED)
async def test_consumers_accept_every_example_of_the_contract(
    service: str,
    event_type: str,
    catalog_sessions: async_sessionmaker[AsyncSession],
    orders_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = catalog_sessions if service == "catalog" else orders_sessions
    for name, data in examples(event_type):
        payload = parse_payload(event_type, data)  # what the consumer reads off the wire
        async with sessions() as session:
            transaction = await session.begin()
            try:  # the handler's effect is not the point here: leave nothing behind
                await HANDLERS[service][event_type](session, _envelope(event_type, data), payload)
            except Exception as exc:
                raise AssertionError(f"{service} refused {event_type} ({name}): {data}") from exc
            finally:
                await transaction.rollback()

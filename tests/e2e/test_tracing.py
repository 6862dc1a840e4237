"""One order, one trace: four real processes and the broker, each writing its spans to a
file of its own (shop_common.tracing), rebuilt here into one tree by the parent links."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.e2e import Shop, Stack, eventually
from tests.support.orders import key_header, order_body

pytestmark = pytest.mark.e2e
PROCESSES = ("catalog-api", "catalog-worker", "orders-api", "orders-worker")


@dataclass(frozen=True)
class Span:
    process: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str | None
    attributes: dict[str, Any]
    service: str


def _hex(value: str | None) -> str | None:
    return None if value is None else value.removeprefix("0x")


def spans_of(stack: Stack, trace_id: str) -> list[Span]:
    found = []
    for process, path in stack.traces.items():
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            raw = json.loads(line)
            if _hex(raw["context"]["trace_id"]) != trace_id:
                continue
            found.append(
                Span(
                    process=process,
                    name=raw["name"],
                    kind=raw["kind"].removeprefix("SpanKind."),
                    trace_id=trace_id,
                    span_id=_hex(raw["context"]["span_id"]) or "",
                    parent_id=_hex(raw["parent_id"]),
                    attributes=raw["attributes"],
                    service=raw["resource"]["attributes"]["service.name"],
                )
            )
    return found


class Tree:
    """The spans of one trace, with the questions the tests ask of them."""

    def __init__(self, spans: list[Span], root_parent: str) -> None:
        self.spans = spans
        self.by_id = {span.span_id: span for span in spans}
        self.root_parent = root_parent

    def one(self, process: str, kind: str, **attributes: Any) -> Span:
        matching = [
            s
            for s in self.spans
            if s.process == process
            and s.kind == kind
            and all(s.attributes.get(k) == v for k, v in attributes.items())
        ]
        assert len(matching) == 1, (process, kind, attributes, matching)
        return matching[0]

    def parent(self, span: Span) -> Span:
        assert span.parent_id in self.by_id, f"{span.name} in {span.process}: parent not traced"
        return self.by_id[span.parent_id]

    def descends(self, span: Span, ancestor: Span) -> bool:
        while span.parent_id != self.root_parent:
            span = self.parent(span)
            if span is ancestor:
                return True
        return False


async def _traced_order(shop: Shop, lines: tuple[tuple[str, int], ...]) -> tuple[str, str, str]:
    trace_id, caller_span = uuid.uuid4().hex, os.urandom(8).hex()
    placed = await shop.http.post(
        f"{shop.stack.orders_url}/v1/orders",
        json=order_body(*lines),
        headers={
            **shop.stack.customer,
            **key_header(),
            "traceparent": f"00-{trace_id}-{caller_span}-01",
        },
    )
    assert placed.status_code == 201, placed.text
    order = await shop.final(placed.json()["id"])
    return order["status"], trace_id, caller_span


async def _tree(stack: Stack, trace_id: str, caller_span: str, *, last_event: str) -> Tree:
    """The trace once the event that ends the saga was handled by Orders (and after that,
    what Orders published on: the spans of the trace's last hop are written when they end)."""

    def settled(spans: list[Span]) -> bool:
        return any(
            s.process == "orders-worker"
            and s.kind == "CONSUMER"
            and s.attributes.get("messaging.rabbitmq.destination.routing_key") == last_event
            for s in spans
        )

    async def read() -> list[Span]:
        return spans_of(stack, trace_id)

    return Tree(await eventually(read, settled, within=20), caller_span)


def _assert_saga_tree(tree: Tree, *, placed_by_catalog: str) -> None:
    routing = "messaging.rabbitmq.destination.routing_key"
    # The request: the caller's span is the parent of Orders' server span.
    server = tree.one("orders-api", "SERVER", **{"http.route": "/v1/orders"})
    assert server.parent_id == tree.root_parent
    assert server.name == "POST /v1/orders"
    assert server.service == "orders-api"
    # Orders looks the products up in Catalog: httpx's CLIENT span, Catalog's SERVER span.
    catalog_server = tree.one("catalog-api", "SERVER", **{"http.route": "/v1/products"})
    lookup = tree.parent(catalog_server)
    assert (lookup.process, lookup.kind) == ("orders-api", "CLIENT")
    assert tree.parent(lookup) is server
    # Orders writes the order and its outbox row; the relay publishes it later, in another
    # process, as a child of the context the row was written in.
    placed = tree.one("orders-worker", "PRODUCER", **{routing: "orders.order.placed.v1"})
    assert tree.descends(placed, server)
    # Catalog consumes it, reserves or rejects, and its relay publishes the answer.
    reserving = tree.one("catalog-worker", "CONSUMER", **{routing: "orders.order.placed.v1"})
    assert tree.parent(reserving) is placed
    answer = tree.one("catalog-worker", "PRODUCER", **{routing: placed_by_catalog})
    assert tree.descends(answer, reserving)
    # Orders consumes the answer and settles the order.
    settling = tree.one("orders-worker", "CONSUMER", **{routing: placed_by_catalog})
    assert tree.parent(settling) is answer
    # The database under each hop that writes.
    for hop in (server, reserving, settling):
        assert any(
            s.kind == "CLIENT"
            and s.attributes.get("db.system.name") == "postgresql"
            and tree.descends(s, hop)
            for s in tree.spans
        ), f"no database span under {hop.name} in {hop.process}"
    # One tree: every span's parent is in it, except the root's (the caller's).
    for span in tree.spans:
        if span.parent_id != tree.root_parent:
            tree.parent(span)
    assert {s.process for s in tree.spans} == set(PROCESSES)


async def test_a_confirmed_order_is_one_trace_across_both_services(
    shop: Shop, stack: Stack
) -> None:
    product = await shop.new_product(stock_available=5)
    status, trace_id, caller_span = await _traced_order(shop, ((product["id"], 2),))
    assert status == "CONFIRMED"
    tree = await _tree(stack, trace_id, caller_span, last_event="catalog.stock.reserved.v1")
    _assert_saga_tree(tree, placed_by_catalog="catalog.stock.reserved.v1")


async def test_a_rejected_order_is_one_trace_across_both_services(shop: Shop, stack: Stack) -> None:
    product = await shop.new_product(stock_available=1)
    status, trace_id, caller_span = await _traced_order(shop, ((product["id"], 3),))
    assert status == "REJECTED"
    tree = await _tree(stack, trace_id, caller_span, last_event="catalog.stock.rejected.v1")
    _assert_saga_tree(tree, placed_by_catalog="catalog.stock.rejected.v1")

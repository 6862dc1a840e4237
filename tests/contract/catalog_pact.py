"""What Orders expects of Catalog's HTTP API, and the consumer run that records it as a pact.

Each `Expectation` is one interaction. `record` writes it into a `Pact`; `run_consumer` puts
the real `CatalogClient` in front of Pact's mock server for it, checks what the client makes
of the answer, and only then writes the interaction to the pact file.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pact import Pact, match

from shop_common.http import ResilientHttpClient, ResilientHttpClientConfig
from shop_orders.catalog_client.client import CatalogClient
from shop_orders.catalog_client.schemas import CatalogProduct

CONSUMER = "shop-orders"
PROVIDER = "shop-catalog"
PACT_FILE = f"{CONSUMER}-{PROVIDER}.json"

PRODUCTS_EXIST = "products A and B exist, B inactive"
NO_PRODUCTS = "no products exist"

# Fixed ids, so that the provider's state handler can create exactly these rows.
PRODUCT_A = CatalogProduct(
    id=uuid.UUID("0b7a1c3e-5f00-4c1a-9d2e-00000000000a"),
    sku="PACT-A",
    name="Pact product A",
    price_cents=1999,
    currency="EUR",
    active=True,
)
PRODUCT_B = CatalogProduct(
    id=uuid.UUID("0b7a1c3e-5f00-4c1a-9d2e-00000000000b"),
    sku="PACT-B",
    name="Pact product B",
    price_cents=500,
    currency="EUR",
    active=False,
)
UNKNOWN = uuid.UUID("0b7a1c3e-5f00-4c1a-9d2e-0000000000ff")
MISSING = (
    uuid.UUID("0b7a1c3e-5f00-4c1a-9d2e-0000000000c1"),
    uuid.UUID("0b7a1c3e-5f00-4c1a-9d2e-0000000000c2"),
)


def item(example: CatalogProduct, **extra: object) -> dict[str, object]:
    """A product as Orders reads it: shapes, with `example` as the mock's values.

    `id` and `active` are literal, not shapes: Orders keys its result by id and refuses
    inactive products, so a provider answering another product, or B as active, must fail.
    `extra` adds expectations Orders does not have (to show a contract breaking).
    """
    return {
        "id": str(example.id),
        "sku": match.str(example.sku),
        "name": match.str(example.name),
        "price_cents": match.int(example.price_cents),
        "currency": match.regex(example.currency, regex=r"^[A-Z]{3}$"),
        "active": example.active,
        **extra,
    }


@dataclass(frozen=True)
class Expectation:
    description: str
    state: str
    state_params: dict[str, Any]
    ids: tuple[uuid.UUID, ...]
    items: tuple[dict[str, object], ...]
    found: tuple[CatalogProduct, ...]  # what `CatalogClient.get_products` must return


BATCH_LOOKUP = Expectation(
    description="a batch lookup of two known products and an unknown id",
    state=PRODUCTS_EXIST,
    state_params={"a_id": str(PRODUCT_A.id), "b_id": str(PRODUCT_B.id)},
    ids=(PRODUCT_A.id, PRODUCT_B.id, UNKNOWN),
    items=(item(PRODUCT_A), item(PRODUCT_B)),
    found=(PRODUCT_A, PRODUCT_B),
)
UNKNOWN_LOOKUP = Expectation(
    description="a batch lookup of ids no product has",
    state=NO_PRODUCTS,
    state_params={"ids": [str(i) for i in MISSING]},
    ids=MISSING,
    items=(),
    found=(),
)
EXPECTATIONS = (BATCH_LOOKUP, UNKNOWN_LOOKUP)


def record(pact: Pact, expectation: Expectation) -> Pact:
    """Add the expectation to `pact` as one HTTP interaction, the way CatalogClient asks."""
    (
        pact.upon_receiving(expectation.description)
        .given(expectation.state, expectation.state_params)
        .with_request("GET", "/v1/products")
        .with_query_parameter("ids", ",".join(str(i) for i in expectation.ids))
        .with_query_parameter("limit", "100")
        .with_header("Accept", "application/json")
        .will_respond_with(200)
        # next_cursor null: Orders reads one page only, so every match must fit on it.
        .with_body(
            {"items": list(expectation.items), "next_cursor": None},
            content_type="application/json",
        )
    )
    return pact


async def run_consumer(expectation: Expectation, pact_dir: Path) -> None:
    """CatalogClient against the mock server; on success the interaction joins the pact file."""
    pact = record(Pact(CONSUMER, PROVIDER), expectation)
    with pact.serve(addr="127.0.0.1") as mock:
        config = ResilientHttpClientConfig(
            target=f"catalog-pact-{uuid.uuid4().hex[:8]}", base_url=str(mock.url)
        )
        async with ResilientHttpClient(config) as http:
            found = await CatalogClient(http).get_products(list(expectation.ids))
    assert found == {p.id: p for p in expectation.found}
    pact.write_file(pact_dir)  # merges into the file the other expectations wrote


def recorded_descriptions(pact_file: Path) -> set[str]:
    if not pact_file.exists():
        return set()
    return {i["description"] for i in json.loads(pact_file.read_text())["interactions"]}

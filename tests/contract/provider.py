"""Provider side of the pact: the rows each provider state needs, and the verifier that replays it.

The state handler runs on the verifier's callback thread, not on the test's event loop, so
it opens its own loop and connection per call (a handful of calls per verification).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from pact import Verifier

from shop_orders.catalog_client.schemas import CatalogProduct
from tests.contract.catalog_pact import (
    NO_PRODUCTS,
    PRODUCT_A,
    PRODUCT_B,
    PRODUCTS_EXIST,
    PROVIDER,
)

INSERT_PRODUCT = (
    "INSERT INTO catalog.products (id, sku, name, description, price_cents, currency,"
    " stock_available, stock_reserved, active, version, created_at, updated_at)"
    " VALUES ($1, $2, $3, '', $4, $5, 10, 0, $6, 1, $7, $7)"
)

StateHandler = Callable[[str, str, Mapping[str, Any] | None], None]


def state_rows(
    state: str, parameters: Mapping[str, Any] | None
) -> tuple[list[uuid.UUID], list[CatalogProduct]]:
    """(ids the state is about, products that must exist with them), in creation order."""
    params = parameters or {}
    if state == PRODUCTS_EXIST:
        a = PRODUCT_A.model_copy(update={"id": uuid.UUID(params["a_id"])})
        b = PRODUCT_B.model_copy(update={"id": uuid.UUID(params["b_id"])})
        return [a.id, b.id], [a, b]
    if state == NO_PRODUCTS:
        return [uuid.UUID(i) for i in params["ids"]], []
    if state == "":  # Pact's generic set-up/tear-down call: nothing to do here
        return [], []
    raise ValueError(f"unknown provider state {state!r}")


class CatalogDatabaseStates:
    """Provider states as rows in `catalog.products`, written over a superuser connection."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    def __call__(self, state: str, action: str, parameters: Mapping[str, Any] | None) -> None:
        ids, rows = state_rows(state, parameters)
        asyncio.run(self._apply(ids, rows if action == "setup" else []))

    async def _apply(self, ids: list[uuid.UUID], rows: list[CatalogProduct]) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            async with conn.transaction():
                await conn.execute("DELETE FROM catalog.products WHERE id = ANY($1::uuid[])", ids)
                # Catalog lists by (created_at, id): spaced timestamps fix the order.
                start = datetime.now(UTC)
                await conn.executemany(
                    INSERT_PRODUCT,
                    [
                        (
                            p.id,
                            p.sku,
                            p.name,
                            p.price_cents,
                            p.currency,
                            p.active,
                            start + timedelta(milliseconds=i),
                        )
                        for i, p in enumerate(rows)
                    ],
                )
        finally:
            await conn.close()


def verifier_for(pact: Path, provider_url: str, states: StateHandler) -> Verifier:
    """A verifier replaying `pact` (file or directory) against the provider at `provider_url`."""
    return (
        Verifier(PROVIDER, host="127.0.0.1")
        .add_transport(url=provider_url)
        .add_source(pact)
        .state_handler(states, teardown=True)
        .set_error_on_empty_pact(enabled=True)
        .set_coloured_output(enabled=False)
    )


def failures(verifier: Verifier) -> dict[str, list[str]]:
    """Interaction description -> sorted "path: mismatch" lines, from a verification that failed."""
    found: dict[str, list[str]] = {}
    for error in verifier.results["errors"]:
        description = error["interaction"].rsplit(" - ", 1)[-1]
        found[description] = sorted(
            f"{m.get('path', '')}: {m['mismatch']}" for m in error["mismatch"]["mismatches"]
        )
    return found

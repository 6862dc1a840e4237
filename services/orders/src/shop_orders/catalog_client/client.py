"""`CatalogClient`: Orders' calls to Catalog through the shared resilient HTTP client."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from pydantic import ValidationError

from shop_common.http import ResilientHttpClient, UpstreamRejected, UpstreamUnavailable
from shop_common.state import StateKey
from shop_orders.catalog_client.schemas import CatalogProduct, CatalogProductPage

log = logging.getLogger(__name__)
MAX_IDS_PER_CALL = 100


class CatalogClient:
    """Batch product lookups. Raises `UpstreamUnavailable` when Catalog gives no usable answer."""

    def __init__(self, http: ResilientHttpClient) -> None:
        self._http = http

    async def get_products(self, ids: Sequence[UUID]) -> dict[UUID, CatalogProduct]:
        """Products by id; unknown ids are simply absent (Catalog's `ids` contract)."""
        if not ids:
            return {}
        if len(ids) > MAX_IDS_PER_CALL:
            raise ValueError(f"at most {MAX_IDS_PER_CALL} ids per call")
        params = {"ids": ",".join(str(i) for i in ids), "limit": str(MAX_IDS_PER_CALL)}
        try:
            body = await self._http.get_json("/v1/products", params=params)
            page = CatalogProductPage.model_validate(body)
        except UpstreamRejected as exc:
            # Our request was refused: a contract bug, not an outage. Fall back all the same,
            # but loudly, so it is seen.
            log.error("catalog rejected a product lookup: %s", exc)
            raise UpstreamUnavailable(exc.target, str(exc)) from exc
        except ValidationError as exc:
            log.error("catalog answered a product lookup with an unexpected body: %s", exc)
            raise UpstreamUnavailable("catalog", "unexpected product page") from exc
        return {p.id: p for p in page.items}


CATALOG = StateKey[CatalogClient]("catalog")

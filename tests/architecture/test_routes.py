"""The services' routes join their apps without FastAPI's include wrapper
(`shop_common.web.app.add_routes`): the same OpenAPI documents, the same URLs, and no
wrapper left for a request to walk through."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI

import shop_common.web.app as app_factory
from shop_common.web.hot import add_routes
from tests.architecture.test_no_thread_hops import _api_routes, apps


def included(app: FastAPI, router: APIRouter) -> None:
    app.include_router(router)


@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_added_routes_document_the_same_api_as_included_ones(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = apps()[service]
    monkeypatch.setattr(app_factory, "add_routes", included)
    reference = apps()[service]
    assert added.openapi() == reference.openapi()
    # The same routes in the same order (the first that matches a request answers it).
    assert [(r.path, r.methods) for r in _api_routes(added.routes)] == [
        (r.path, r.methods) for r in _api_routes(reference.routes)
    ]
    assert not [r for r in added.routes if type(r).__name__ == "_IncludedRouter"]
    assert [r for r in reference.routes if type(r).__name__ == "_IncludedRouter"]


def test_a_router_that_needs_including_is_refused() -> None:
    app = FastAPI()
    router = APIRouter(dependencies=[])
    router.on_startup.append(lambda: None)
    with pytest.raises(ValueError, match="include_router"):
        add_routes(app, router)

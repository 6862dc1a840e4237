"""A `HotRoute` answers every request exactly as the same route served by FastAPI would,
documents the same operation, and refuses a signature it cannot serve the same way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from prometheus_client import REGISTRY

from shop_common.auth import PrincipalDep
from shop_common.state import StateKey
from shop_common.web import create_service_app, json_response
from shop_common.web.hot import HotRoute, hot_get
from tests.support import unconnected_settings

SECRET = "hot-route-tests-" + "0123456789abcdef" * 2
GREETING = StateKey[str]("greeting")
GreetingDep = Annotated[str, Depends(GREETING.dependency)]
Tag = Annotated[str | None, Header(max_length=10, description="a tag")]
Count = Annotated[int, Header(ge=1, le=5)]


async def thing(
    thing_id: uuid.UUID,
    greeting: GreetingDep,
    request: Request,
    x_count: Count,
    x_tag: Tag = None,
) -> Response:
    return json_response(
        {
            "id": str(thing_id),
            "greeting": greeting,
            "tag": x_tag,
            "count": x_count,
            "path": request.url.path,
        }
    )


def routers() -> list[APIRouter]:
    plain, hot = APIRouter(prefix="/plain"), APIRouter(prefix="/hot")
    declaration: dict[str, Any] = {"responses": {404: {"description": "No such thing"}}}
    plain.get("/things/{thing_id}", operation_id="thing", **declaration)(thing)
    hot_get(hot, "/things/{thing_id}", operation_id="hot_thing", **declaration)(thing)
    plain.post("/things/{thing_id}")(thing)  # a second method on the same path
    hot.post("/things/{thing_id}")(thing)
    return [hot, plain]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = unconnected_settings(SECRET)
    app = create_service_app(title="t", settings=settings, routers=routers(), lifespan=lifespan)
    GREETING.set(app, "hello")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def _same(hot: httpx.Response, plain: httpx.Response) -> None:
    assert hot.status_code == plain.status_code
    skip = {"x-request-id", "content-length"}
    assert {k: v for k, v in hot.headers.items() if k not in skip} == {
        k: v for k, v in plain.headers.items() if k not in skip
    }
    body = hot.json()
    other = plain.json()
    if "path" in body:  # the one field that says which route answered
        assert (body.pop("path"), other.pop("path")) == (hot.url.path, plain.url.path)
    if "instance" in body:
        assert body.pop("instance") == hot.url.path
        other.pop("instance")
    assert body == other


@pytest.mark.parametrize(
    ("thing_id", "headers"),
    [
        (str(uuid.uuid4()), {"X-Count": "2", "X-Tag": "blue"}),  # everything given
        (str(uuid.uuid4()), {"X-Count": "3"}),  # an optional header absent: its default
        ("not-a-uuid", {"X-Count": "2"}),  # a bad path parameter: 422, FastAPI's errors
        (str(uuid.uuid4()), {"X-Count": "2", "X-Tag": "x" * 11}),  # a constraint broken
        (str(uuid.uuid4()), {"X-Count": "9"}),  # a number out of range
        (str(uuid.uuid4()), {"X-Count": "two"}),  # not a number
        (str(uuid.uuid4()), {}),  # a required header missing
        ("not-a-uuid", {"X-Tag": "x" * 11}),  # several errors at once, in FastAPI's order
    ],
)
async def test_a_hot_route_answers_as_fastapi_does(
    client: httpx.AsyncClient, thing_id: str, headers: dict[str, str]
) -> None:
    hot = await client.get(f"/hot/things/{thing_id}", headers=headers)
    plain = await client.get(f"/plain/things/{thing_id}", headers=headers)
    _same(hot, plain)


async def test_a_hot_route_serves_its_method_and_leaves_the_others(
    client: httpx.AsyncClient,
) -> None:
    thing_id = str(uuid.uuid4())
    hot = await client.post(f"/hot/things/{thing_id}", headers={"X-Count": "1"})
    assert hot.status_code == 200
    for path in ("/hot", "/plain"):
        refused = await client.delete(f"{path}/things/{thing_id}")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, POST"


async def test_a_hot_route_documents_the_same_operation(client: httpx.AsyncClient) -> None:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    hot = paths["/hot/things/{thing_id}"]["get"]
    plain = paths["/plain/things/{thing_id}"]["get"]
    assert hot.pop("operationId") == "hot_thing"
    assert plain.pop("operationId") == "thing"
    assert hot == plain


async def test_the_edge_sees_the_route(client: httpx.AsyncClient) -> None:
    """RED metrics by route template read `scope["route"]`, as for FastAPI's routes."""
    labels = {"method": "GET", "handler": "/hot/things/{thing_id}", "status": "200"}
    before = REGISTRY.get_sample_value("http_requests_total", labels) or 0.0
    thing_id = uuid.uuid4()
    assert (await client.get(f"/hot/things/{thing_id}", headers={"X-Count": "1"})).is_success
    assert REGISTRY.get_sample_value("http_requests_total", labels) == before + 1


async def parametrised(request: Request, n: int) -> str:
    return "x"


def needs_a_thread(request: Request) -> str:
    return "x"


async def with_query(q: Annotated[str, Query()]) -> Response:
    return Response()


async def with_dependency(word: Annotated[str, Depends(parametrised)]) -> Response:
    return Response()


async def with_sync_dependency(word: Annotated[str, Depends(needs_a_thread)]) -> Response:
    return Response()


async def with_token(principal: PrincipalDep) -> Response:
    return Response()


@pytest.mark.parametrize(
    ("endpoint", "refused"),
    [
        (with_query, "takes query parameters"),
        (with_dependency, "parametrised"),
        (with_sync_dependency, "needs_a_thread"),
        (with_token, "current_principal"),
    ],
)
def test_a_signature_it_cannot_serve_as_fastapi_does_is_refused(
    endpoint: Any, refused: str
) -> None:
    with pytest.raises(TypeError, match=f"{refused}.*use an APIRoute"):
        HotRoute("/x", endpoint)

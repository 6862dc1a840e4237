"""`/docs` is Swagger UI from the vendored assets: every URL on the page is the service's own.

The browser test (tests/browser/) checks that the page works; this one checks what it is
made of, that the files are the ones VENDORED.md records, and the setting that turns it off.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from shop_common.settings import ServiceSettings
from shop_common.web import create_service_app
from shop_common.web.docs import ASSETS, ASSETS_PATH, SWAGGER_UI_VERSION
from tests.support import unconnected_settings

VENDORED = Path(__file__).resolve().parents[2] / "src/shop_common/web/swagger_ui"


@asynccontextmanager
async def no_resources(_app: FastAPI) -> AsyncIterator[None]:
    yield


def settings(**overrides: object) -> ServiceSettings:
    made: ServiceSettings = unconnected_settings("x" * 32, **overrides)
    return made


def app(*, docs_enabled: bool = True, openapi_enabled: bool = True) -> FastAPI:
    settings_ = settings(docs_enabled=docs_enabled, openapi_enabled=openapi_enabled)
    return create_service_app(title="Test", settings=settings_, routers=[], lifespan=no_resources)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as c:
        yield c


def recorded_checksums() -> dict[str, str]:
    text = (VENDORED / "VENDORED.md").read_text()
    return dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", text, re.MULTILINE))


async def test_the_page_loads_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = re.findall(r'(?:src|href)="([^"]*)"', response.text)
    assert sorted(urls) == sorted(f"{ASSETS_PATH}/{name}" for name in ASSETS)
    assert "url: '/openapi.json'" in response.text
    assert '"validatorUrl": null' in response.text  # no badge fetched from the internet
    assert "http://" not in response.text
    assert "https://" not in response.text


async def test_the_assets_are_the_vendored_files(client: httpx.AsyncClient) -> None:
    checksums = recorded_checksums()
    for name, media_type in ASSETS.items():
        response = await client.get(f"{ASSETS_PATH}/{name}")

        assert response.status_code == 200, name
        assert response.headers["content-type"] == media_type
        assert hashlib.sha256(response.content).hexdigest() == checksums[name]
        assert "immutable" in response.headers["cache-control"]
        again = await client.get(
            f"{ASSETS_PATH}/{name}", headers={"If-None-Match": response.headers["etag"]}
        )
        assert again.status_code == 304


async def test_an_unknown_asset_is_a_problem_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{ASSETS_PATH}/..%2Fsettings.py")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_no_redoc_and_no_cdn_pages(client: httpx.AsyncClient) -> None:
    assert (await client.get("/redoc")).status_code == 404
    assert (await client.get("/docs/oauth2-redirect")).status_code == 404


async def test_docs_off_leaves_the_openapi_document() -> None:
    transport = httpx.ASGITransport(app=app(docs_enabled=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get(f"{ASSETS_PATH}/swagger-ui-bundle.js")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 200


async def test_openapi_off_leaves_neither_the_document_nor_the_page() -> None:
    transport = httpx.ASGITransport(app=app(docs_enabled=False, openapi_enabled=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
        assert (await client.get("/openapi.json")).status_code == 404
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/livez")).status_code == 200


def test_docs_without_the_document_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="DOCS_ENABLED needs"):
        settings(docs_enabled=True, openapi_enabled=False)


def test_vendored_md_records_every_file_and_the_version() -> None:
    checksums = recorded_checksums()
    shipped = {p.name for p in VENDORED.iterdir() if p.name != "VENDORED.md"}

    assert set(checksums) == shipped
    for name, digest in checksums.items():
        assert hashlib.sha256((VENDORED / name).read_bytes()).hexdigest() == digest, name
    assert f"swagger-ui-dist {SWAGGER_UI_VERSION}," in (VENDORED / "VENDORED.md").read_text()

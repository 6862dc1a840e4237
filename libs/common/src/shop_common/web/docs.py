"""Swagger UI at `/docs` from assets shipped in this package: it renders with no network.

FastAPI's own `/docs` page loads Swagger UI's JavaScript and CSS from a public CDN, so on an
air-gapped cluster, behind a strict proxy or on a machine without internet it stays blank.
This page loads them from the service itself: swagger-ui-dist, vendored unchanged under
`swagger_ui/` (version, source and checksums in its VENDORED.md). ReDoc is not served: its
page needs a CDN script and web fonts as well.

`create_service_app` turns FastAPI's pages off (`docs_url=None, redoc_url=None`) and calls
`install_docs`; `<SERVICE>_DOCS_ENABLED=false` (production) leaves `/docs` out entirely.
`/openapi.json` is served either way: it is part of the HTTP contract.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from shop_common.errors import NotFound
from shop_common.web.hot import add_routes

SWAGGER_UI_VERSION = "5.35.0"
DOCS_PATH = "/docs"
# The version is in the path, so a browser may keep an asset for good (`immutable`).
ASSETS_PATH = f"{DOCS_PATH}/assets/{SWAGGER_UI_VERSION}"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# Swagger UI's defaults would load a validator badge from the internet; tokens pasted into
# "Authorize" survive a reload of the page (dev convenience; docs are off in production).
SWAGGER_UI_PARAMETERS = {"validatorUrl": None, "persistAuthorization": True}


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def _asset(name: str) -> _Asset:
    """Read once per process, on the first request for it (never when docs are off)."""
    body = (files("shop_common.web") / "swagger_ui" / name).read_bytes()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return _Asset(body=body, media_type=ASSETS[name], etag=etag)


def docs_router(openapi_url: str, title: str) -> APIRouter:
    """`/docs` and its assets; nothing here appears in the OpenAPI document."""
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_PATH)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @router.get(ASSETS_PATH + "/{name}")
    async def swagger_ui_asset(name: str, request: Request) -> Response:
        if name not in ASSETS:
            raise NotFound(f"No such Swagger UI asset: {name}.")
        asset = _asset(name)
        headers = {
            "ETag": asset.etag,
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    return router


def install_docs(app: FastAPI, *, enabled: bool) -> None:
    """Serve Swagger UI at `/docs` from the vendored assets, when `enabled`."""
    if enabled and app.openapi_url:
        add_routes(app, docs_router(app.openapi_url, app.title))

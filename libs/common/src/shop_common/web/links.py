"""URLs the API hands out (`Location`), never built from the request's Host header.

A client can send any Host; echoing it back lets anyone who can reach the API (or poison a
cache in front of it) point a `Location` elsewhere. The URL is the configured public base
(`<SVC>_PUBLIC_BASE_URL`) plus the route's path, or just the path (RFC 9110 allows a
relative `Location`; clients resolve it against the URL they called).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from shop_common.state import StateKey

# Set by `create_service_app` from the settings, without a trailing slash; "" when unset.
PUBLIC_BASE_URL = StateKey[str]("public_base_url")


def location(request: Request, route_name: str, **path_params: Any) -> str:
    """Where the resource named by `route_name` and `path_params` lives, for `Location`."""
    path = request.app.url_path_for(route_name, **{k: str(v) for k, v in path_params.items()})
    # The public base already names any prefix a proxy adds; without it, the app's own.
    base = PUBLIC_BASE_URL.from_request(request) or request.scope.get("root_path", "")
    return f"{base}{path}"

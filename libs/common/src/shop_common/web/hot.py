"""Less of FastAPI's per-request machinery: `HotRoute` for the hottest reads, `add_routes`
for every router.

A route declared with `@hot_get(router, path, ...)` (`router.get` with
`route_class_override=HotRoute`) is a FastAPI route in every way a
client or a reader can see: its signature, OpenAPI operation, validation errors and
exception handling are FastAPI's. Per request it skips FastAPI's machinery around the
endpoint (the dependency solver walking the signature again, two exit stacks, the
route-context bookkeeping): it reads the path and header parameters it was declared with,
validates each with the field FastAPI built for it, calls the dependencies that only take
the request (app-state lookups such as `DriverPoolDep`), and awaits the endpoint. On the
catalog read by id that is about a third of the CPU a request costs
(docs/adr/0015-hot-statements-on-the-driver.md).

What it cannot do as FastAPI would, it refuses when the route is declared: query, cookie
and body parameters, dependencies with parameters of their own, with `yield`, or sync ones,
background tasks. The endpoint returns a `Response` itself (`response_model=` documents it).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, params
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import Match, Route, request_response
from starlette.types import Receive, Scope, Send

__all__ = ["HotRoute", "add_routes", "hot_get"]

Validate = Callable[[Any, tuple[str, str]], tuple[Any, list[Any]]]
Endpoint = Callable[..., Awaitable[Response]]


def hot_get(router: APIRouter, path: str, **kwargs: Any) -> Callable[[Endpoint], Endpoint]:
    """`@router.get(path, **kwargs)`, served by a `HotRoute`."""

    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            path, endpoint, methods=["GET"], route_class_override=HotRoute, **kwargs
        )
        return endpoint

    return register


class HotRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._plan = _Plan(self.dependant, self.path)
        self.app = request_response(self._respond)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = Route.matches(self, scope)
        if match is not Match.NONE:
            child_scope["route"] = self  # as FastAPI's routes do: metrics, the edge read it
        return match, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await Route.handle(self, scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        response = await self.endpoint(**await self._plan.arguments(request))
        if not isinstance(response, Response):
            raise TypeError(f"HotRoute {self.path}: the endpoint must return a Response")
        return response


class _Plan:
    """How to get each argument of one endpoint from a request, worked out once."""

    def __init__(self, dependant: Dependant, path: str) -> None:
        refused = [
            kind
            for kind, present in (
                ("query parameters", dependant.query_params),
                ("cookie parameters", dependant.cookie_params),
                ("a body", dependant.body_params),
                ("background tasks", dependant.background_tasks_param_name),
                ("the response", dependant.response_param_name),
                ("websockets", dependant.websocket_param_name),
                ("the connection", dependant.http_connection_param_name),
                ("security scopes", dependant.security_scopes_param_name),
            )
            if present
        ]
        if refused:
            raise TypeError(f"HotRoute {path}: takes {', '.join(refused)}; use an APIRoute")
        self.request_name = dependant.request_param_name
        self.path: list[tuple[str, str, Validate]] = [
            (f.name, f.name, _validator(f)) for f in dependant.path_params
        ]
        self.headers = [
            (f.name, _header_key(f, path), _validator(f)) for f in dependant.header_params
        ]
        self.dependencies: list[tuple[str, Callable[[Request], Awaitable[Any]]]] = []
        for sub in dependant.dependencies:
            if sub.name is None or sub.call is None or not _request_only(sub):
                raise TypeError(
                    f"HotRoute {path}: dependency {sub.call!r} must be an async function of "
                    "the request alone; use an APIRoute"
                )
            self.dependencies.append((sub.name, sub.call))

    async def arguments(self, request: Request) -> dict[str, Any]:
        values: dict[str, Any] = {}
        errors: list[Any] = []
        path_params = request.path_params
        headers = request.headers
        for where, fields, source in (
            ("path", self.path, path_params),
            ("header", self.headers, headers),
        ):
            for name, key, validate in fields:
                value, failed = validate(source.get(key), (where, key))
                errors.extend(failed)
                values[name] = value
        if errors:
            raise RequestValidationError(errors)
        for name, call in self.dependencies:
            values[name] = await call(request)
        if self.request_name is not None:
            values[self.request_name] = request
        return values


def _validator(field: Any) -> Validate:
    """The field's own validation (what FastAPI runs), with FastAPI's answer to a value that
    is absent: the default, or a "missing" error."""
    required = field.field_info.is_required()
    default = field.default

    def validate(value: Any, loc: tuple[str, str]) -> tuple[Any, list[Any]]:
        if value is None:
            if required:
                return None, [
                    {"type": "missing", "loc": loc, "msg": "Field required", "input": None}
                ]
            return default, []
        result, errors = field.validate(value, {}, loc=loc)
        return result, list(errors or [])

    return validate


def _header_key(field: Any, path: str) -> str:
    info = field.field_info
    if not isinstance(info, params.Header) or info.validation_alias is not None:
        raise TypeError(f"HotRoute {path}: header {field.name} has aliases; use an APIRoute")
    if info.convert_underscores and field.alias == field.name:
        return str(field.alias).replace("_", "-")
    return str(field.alias)


def _request_only(dependant: Dependant) -> bool:
    return (
        dependant.request_param_name is not None
        and not (
            dependant.path_params
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.dependencies
        )
        and inspect.iscoroutinefunction(dependant.call)
    )


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """`app.include_router(router)` for a router that carries its prefix, tags and
    responses on its own routes (every router here): its routes join the app's list as
    they are. FastAPI 0.163 keeps an included router behind a wrapper that every request
    walks through (route contexts saved and restored in the scope), 17 us of a 270 us
    catalog read; the OpenAPI document is the same (tests/architecture/test_routes.py)."""
    if router.on_startup or router.on_shutdown or router.dependencies:
        raise ValueError("a router with its own events or dependencies needs include_router")
    for route in router.routes:
        if isinstance(route, APIRoute):  # the app's responses, as include_router merges them
            route.responses = {**app.router.responses, **route.responses}
        app.router.routes.append(route)

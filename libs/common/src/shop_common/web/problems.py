"""RFC 9457 problem details: `shop_common.errors` mapped to responses, in one place.

The same module says so in the OpenAPI document: `Problem` is the schema of every error
response, `problem(...)` declares one on a route (and `response_headers(...)` the headers
an answer always carries).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from http import HTTPStatus
from typing import Any

from asyncpg import PostgresError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shop_common.db.errors import DatabaseUnavailable, is_connection_error, sqlstate
from shop_common.errors import ProblemError
from shop_common.observability import REQUEST_ID_HEADER

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
_DATABASE_AWAY = "The database is not reachable right now; try again shortly."
log = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One invalid input: where it is (`["body", "lines", 0, "quantity"]`), what is wrong."""

    model_config = ConfigDict(title="FieldError")

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response (`application/problem+json`).

    Members beyond these are extensions (RFC 9457 section 3.2) and may be added.
    """

    model_config = ConfigDict(title="Problem", extra="allow")

    type: str = Field(
        description="URI reference naming the problem type: `/problems/<slug>` or `about:blank`",
        json_schema_extra={"format": "uri-reference"},
    )
    title: str = Field(description="Short summary of the problem type")
    status: int = Field(ge=400, le=599, description="The HTTP status code of this response")
    detail: str = Field(description="What went wrong with this request, for a person")
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        default=None, description="The invalid inputs, on validation problems"
    )


def response_headers(described: Mapping[str, str]) -> dict[str, Any]:
    """OpenAPI response headers (name -> description) that an answer always carries."""
    return {
        name: {"description": text, "required": True, "schema": {"type": "string"}}
        for name, text in described.items()
    }


def problem(description: str, *, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An OpenAPI response answering `application/problem+json` (`Problem`), for `responses=`;
    `headers`: name -> description of the headers it always carries."""
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }
    if headers:
        response["headers"] = response_headers(headers)
    return response


# The answers that shop_common itself gives on any route that asks for them.
UNAUTHORIZED = problem(
    "No bearer token, or one that is invalid or expired",
    headers={"WWW-Authenticate": "`Bearer`, with `error` when a token was sent"},
)
FORBIDDEN = problem("The token's roles do not allow this operation")
PAYLOAD_TOO_LARGE = problem("The request body is over the service's size limit")
SERVICE_UNAVAILABLE = problem(
    "The service cannot answer right now (its database is away); retry later",
    headers={"Retry-After": "Seconds to wait before retrying"},
)


def problem_response(
    status: int,
    *,
    slug: str | None,
    title: str | None = None,
    detail: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}" if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description,
    }
    if errors is not None:
        body["errors"] = list(errors)
    body.update(extra or {})
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors()
    ]


async def _on_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(
            400, slug="malformed-json", detail="The request body is not valid JSON.", errors=errors
        )
    return problem_response(
        422,
        slug="validation",
        title="Validation Failed",
        detail="The request has invalid fields; see `errors`.",
        errors=errors,
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
        exc.status_code
    )
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(exc.status_code, slug=slug, detail=detail, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (RFC 9110 15.5.6). Starlette's own 405
    names only the methods of the first route that matched the path, and one path often has
    two routes (`GET` and `POST /v1/products`)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    """Class 22 (data exception: a NUL in text, a value out of range) is the client's input;
    a lost or refused connection is an outage the client may retry (503); anything else is
    ours and stays a 500. Either way the transaction was rolled back."""
    if (sqlstate(exc) or "").startswith("22"):
        return problem_response(
            400, slug="unstorable-value", detail="A value in the request cannot be stored."
        )
    if is_connection_error(exc):
        log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
        return await _on_problem(
            request, DatabaseUnavailable(_DATABASE_AWAY, retry_after_seconds=1)
        )
    return await _on_unexpected(request, exc)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, slug="internal", detail="An unexpected error occurred.")


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error as a problem, and say so in the app's OpenAPI document."""
    app.openapi = _with_problem_schema(app, app.openapi)  # type: ignore[method-assign]
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(PostgresError, _on_database_error)  # the read pool's driver
    app.add_exception_handler(PoolTimeout, _on_database_error)  # no connection free in time
    app.add_exception_handler(Exception, _on_unexpected)


def _with_problem_schema(
    app: FastAPI, generate: Callable[[], dict[str, Any]]
) -> Callable[[], dict[str, Any]]:
    """`app.openapi` plus the `Problem` component (a problem+json response declared without
    a schema, like the app-wide 400 and 422, gets it), the 503 that any operation may answer
    (its database away) unless it declares its own, and the `X-Request-ID` header that
    every response carries (`shop_common.web.edge`)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        definitions = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(definitions.pop("$defs", {}))
        schemas["Problem"] = definitions
        for path in document.get("paths", {}).values():
            for operation in path.values():
                operation["responses"].setdefault("503", deepcopy(SERVICE_UNAVAILABLE))
                for response in operation["responses"].values():
                    # Replaced, not updated: FastAPI shares these dicts with the routes.
                    content = response.get("content", {}).get(PROBLEM_JSON)
                    if content is not None and "schema" not in content:
                        schema = {"schema": {"$ref": PROBLEM_SCHEMA_REF}}
                        response["content"] = {**response["content"], PROBLEM_JSON: schema}
                    response["headers"] = {**response.get("headers", {}), **_REQUEST_ID}
        return document

    return openapi


_REQUEST_ID = response_headers(
    {REQUEST_ID_HEADER: "The request's id (the caller's, if sane, or a new one), as logged"}
)

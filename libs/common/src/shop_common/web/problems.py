"""RFC 9457 problem details: `shop_common.errors` mapped to responses, in one place."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from asyncpg import PostgresError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from shop_common.db.errors import DatabaseUnavailable, is_connection_error, sqlstate
from shop_common.errors import ProblemError

PROBLEM_JSON = "application/problem+json"
_DATABASE_AWAY = "The database is not reachable right now; try again shortly."
log = logging.getLogger(__name__)


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


async def _on_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
        exc.status_code
    )
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(exc.status_code, slug=slug, detail=detail, headers=exc.headers)


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
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(PostgresError, _on_database_error)  # the read pool's driver
    app.add_exception_handler(PoolTimeout, _on_database_error)  # no connection free in time
    app.add_exception_handler(Exception, _on_unexpected)

"""Helpers shared by the test suites (importable because pytest puts the repo root on the path)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import httpx

TEST_JWT_SECRET = "test-secret-for-hs256-only-in-tests-" + "0123456789abcdef" * 2


@dataclass(frozen=True)
class ServiceDb:
    """A provisioned and migrated service schema, reached through its own role."""

    url: str
    role: str
    schema: str
    database: str


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


def parse_python(source: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse`, again if CPython 3.11 reports its AST recursion counter out of step.

    3.11 keeps that counter in interpreter-wide state (python/cpython#106905), so a tree built
    while something else in the process builds one can fail with a spurious
    `SystemError: AST constructor recursion depth mismatch`; the source is fine and parsing
    it again gives the exact tree. Seen about once in ten full runs of the suite.
    """
    for attempt in (1, 2, 3):
        try:
            return ast.parse(source, filename)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc) or attempt == 3:
                raise
    raise AssertionError("unreachable")


def unconnected_settings(jwt_secret: str, **overrides: Any) -> Any:
    """`ServiceSettings` for an app whose lifespan opens nothing: a database that is never
    reached, no listening ports of its own."""
    from pydantic import SecretStr

    from shop_common.settings import ServiceSettings

    return ServiceSettings(
        port=1,
        worker_port=0,
        metrics_port=0,
        database_url="postgresql+asyncpg://nobody@127.0.0.1/none",
        db_schema="none",
        jwt_secret=SecretStr(jwt_secret),
        **overrides,
    )

"""Helpers shared by the test suites (importable because pytest puts the repo root on the path)."""

from __future__ import annotations

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

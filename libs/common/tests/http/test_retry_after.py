"""Retry-After parsing: delta-seconds and HTTP-dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shop_common.http import parse_retry_after

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("Fri, 01 May 2026 12:00:07 GMT", 7.0),
        ("Fri, 01 May 2026 11:59:00 GMT", 0.0),  # in the past: now
        ("Fri, 01 May 2026 12:00:30 -0000", 30.0),
    ],
)
def test_readable_values(header: str, seconds: float) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize("header", [None, "", "-1", "soon", "nan", "inf", "1e3", "Fri, 99 Foo"])
def test_unreadable_values_mean_no_hint(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None

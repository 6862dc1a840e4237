"""The overall deadline bounds a whole call: attempts, retries and waits together."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from shop_common.http import DeadlineExceeded

EPSILON = 0.15  # scheduling slack on a busy 2-core runner


async def hang(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(30)
    return httpx.Response(200)


async def slow_timeout(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(0.15)
    raise httpx.ReadTimeout("slow", request=request)


async def test_a_hanging_upstream_is_cut_at_the_deadline(scripted, make_client, read_metric):
    upstream = scripted(hang)
    client = make_client(upstream, deadline=0.3)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        await client.get_json("/v1/products")
    elapsed = time.monotonic() - started

    assert 0.3 <= elapsed < 0.3 + EPSILON
    assert caught.value.attempts == 1
    assert upstream.count == 1
    assert read_metric("shop_http_client_calls_total", outcome="deadline_exceeded") == 1
    assert read_metric("shop_http_client_attempts_total", outcome="cancelled") == 1


async def test_retries_never_run_past_the_deadline(scripted, make_client) -> None:
    upstream = scripted(slow_timeout)
    client = make_client(upstream, deadline=0.5, max_attempts=10, real_sleep=True)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        await client.get_json("/v1/products")
    elapsed = time.monotonic() - started

    assert elapsed < 0.5 + EPSILON
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)  # the last failure, for logs
    assert 2 <= upstream.count <= 4  # ~0.16 s per attempt and wait


async def test_no_sleep_is_started_that_would_end_past_the_deadline(scripted, make_client) -> None:
    upstream = scripted(503)
    client = make_client(upstream, deadline=0.5, backoff_base=1.0, backoff_max=1.0, real_sleep=True)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await client.get_json("/v1/products")

    assert time.monotonic() - started < 0.1
    assert upstream.count == 1


async def test_a_call_may_set_its_own_deadline(scripted, make_client) -> None:
    client = make_client(scripted(hang), deadline=5.0)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        await client.get_json("/v1/products", deadline=0.2)

    assert time.monotonic() - started < 0.2 + EPSILON
    assert caught.value.deadline == 0.2


async def test_attempt_timeouts_never_exceed_what_is_left(scripted, make_client) -> None:
    upstream = scripted(200)
    client = make_client(upstream, deadline=0.25, connect_timeout=1.0, read_timeout=2.0)

    await client.get_json("/v1/products")

    timeouts = upstream.requests[0].extensions["timeout"]
    assert 0 < timeouts["connect"] <= 0.25
    assert 0 < timeouts["read"] <= 0.25


async def test_attempt_timeouts_are_the_configured_ones_when_time_allows(
    scripted, make_client
) -> None:
    upstream = scripted(200)
    client = make_client(upstream, deadline=10.0, connect_timeout=0.5, read_timeout=1.0)

    await client.get_json("/v1/products")

    timeouts = upstream.requests[0].extensions["timeout"]
    assert (timeouts["connect"], timeouts["read"]) == (0.5, 1.0)

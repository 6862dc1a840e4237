"""Retry policy: only transient failures of idempotent requests, bounded, with backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from shop_common.http import (
    DeadlineExceeded,
    RetriesExhausted,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamUnavailable,
)

TRANSIENT = [502, 503, 504, httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout]


@pytest.mark.parametrize("failure", TRANSIENT)
async def test_transient_failures_of_a_get_are_retried_up_to_the_bound(
    scripted, make_client, sleeps, failure
) -> None:
    upstream = scripted(failure)
    client = make_client(upstream, max_attempts=3)

    with pytest.raises(RetriesExhausted) as caught:
        await client.get_json("/v1/products")

    assert upstream.count == 3
    assert caught.value.attempts == 3
    assert len(sleeps.calls) == 2
    if isinstance(failure, int):
        assert caught.value.response is not None
        assert caught.value.response.status_code == failure
    else:
        assert isinstance(caught.value.__cause__, failure)


async def test_a_get_recovers_when_a_retry_succeeds(scripted, make_client) -> None:
    upstream = scripted(503, httpx.ConnectError, 200)
    client = make_client(upstream, max_attempts=3)

    assert await client.get_json("/v1/products") == {"status": 200}
    assert upstream.count == 3


@pytest.mark.parametrize("failure", [503, httpx.ConnectError, httpx.ReadTimeout])
async def test_a_post_is_never_retried(scripted, make_client, sleeps, failure) -> None:
    upstream = scripted(failure, 201)
    client = make_client(upstream, max_attempts=5)

    with pytest.raises(UpstreamFailed) as caught:
        await client.request("POST", "/v1/orders", json={"lines": []})

    assert type(caught.value) is UpstreamFailed  # not RetriesExhausted: nothing was retried
    assert upstream.count == 1
    assert sleeps.calls == []


async def test_a_caller_may_mark_a_post_idempotent(scripted, make_client) -> None:
    upstream = scripted(503, 503, 201)
    client = make_client(upstream, max_attempts=3)

    response = await client.request("POST", "/v1/things", json={}, idempotent=True)

    assert response.status_code == 201
    assert upstream.count == 3


async def test_a_caller_may_mark_a_get_not_idempotent(scripted, make_client) -> None:
    upstream = scripted(503, 200)
    client = make_client(upstream, max_attempts=3)

    with pytest.raises(UpstreamFailed):
        await client.request("GET", "/v1/side-effect", idempotent=False)
    assert upstream.count == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 422, 429])
async def test_client_errors_are_returned_not_retried(scripted, make_client, status) -> None:
    upstream = scripted(status, 200)
    client = make_client(upstream, max_attempts=3)

    response = await client.request("GET", "/v1/products/x")

    assert response.status_code == status
    assert upstream.count == 1


@pytest.mark.parametrize("status", [400, 404, 409, 422])
async def test_get_json_raises_rejected_on_client_errors(scripted, make_client, status) -> None:
    upstream = scripted(status)
    client = make_client(upstream)

    with pytest.raises(UpstreamRejected) as caught:
        await client.get_json("/v1/products/x")

    assert not isinstance(caught.value, UpstreamUnavailable)  # the caller's bug: no fallback
    assert caught.value.response.status_code == status
    assert upstream.count == 1


@pytest.mark.parametrize("status", [500, 501])
async def test_other_server_errors_fail_without_retry(scripted, make_client, status) -> None:
    upstream = scripted(status, 200)
    client = make_client(upstream, max_attempts=3)

    with pytest.raises(UpstreamFailed) as caught:
        await client.get_json("/v1/products")

    assert type(caught.value) is UpstreamFailed
    assert caught.value.response is not None
    assert caught.value.response.status_code == status
    assert upstream.count == 1


async def test_configuration_errors_are_not_retried(scripted, make_client) -> None:
    upstream = scripted(httpx.UnsupportedProtocol, 200)
    client = make_client(upstream, max_attempts=3)

    with pytest.raises(UpstreamFailed):
        await client.get_json("/v1/products")
    assert upstream.count == 1


async def test_backoff_is_exponential_and_capped(scripted, make_client, sleeps) -> None:
    upstream = scripted(503)
    client = make_client(upstream, max_attempts=5, backoff_base=0.1, backoff_max=0.3)

    with pytest.raises(RetriesExhausted):
        await client.get_json("/v1/products")

    assert sleeps.calls == pytest.approx([0.1, 0.2, 0.3, 0.3])


async def test_backoff_has_jitter(scripted, make_client, sleeps) -> None:
    upstream = scripted(503)
    client = make_client(
        upstream, max_attempts=4, backoff_base=0.1, backoff_max=1.0, backoff_jitter=0.05
    )

    with pytest.raises(RetriesExhausted):
        await client.get_json("/v1/products")

    assert len(sleeps.calls) == 3
    for waited, base in zip(sleeps.calls, [0.1, 0.2, 0.4], strict=True):
        assert base <= waited <= base + 0.05


async def test_retry_after_seconds_is_honoured_on_503(scripted, make_client, sleeps) -> None:
    upstream = scripted((503, {"Retry-After": "2"}), 200)
    client = make_client(upstream, deadline=5.0)

    assert await client.get_json("/v1/products") == {"status": 200}
    assert sleeps.calls == [2.0]


async def test_retry_after_http_date_is_honoured(scripted, make_client, sleeps) -> None:
    when = datetime.now(UTC) + timedelta(seconds=3)
    upstream = scripted((503, {"Retry-After": format_datetime(when, usegmt=True)}), 200)
    client = make_client(upstream, deadline=10.0)

    await client.get_json("/v1/products")

    assert len(sleeps.calls) == 1
    assert 1.0 <= sleeps.calls[0] <= 3.0  # HTTP-dates have whole-second resolution


async def test_retry_after_beyond_the_deadline_gives_up_at_once(
    scripted, make_client, sleeps
) -> None:
    upstream = scripted((503, {"Retry-After": "30"}), 200)
    client = make_client(upstream, deadline=1.0)

    with pytest.raises(DeadlineExceeded) as caught:
        await client.get_json("/v1/products")

    assert sleeps.calls == []
    assert upstream.count == 1
    assert caught.value.attempts == 1


async def test_429_is_retried_with_retry_after_only_when_configured(
    scripted, make_client, sleeps
) -> None:
    upstream = scripted((429, {"Retry-After": "1"}), 200)
    client = make_client(upstream, retry_statuses=frozenset({429, 502, 503, 504}))

    assert await client.get_json("/v1/products") == {"status": 200}
    assert sleeps.calls == [1.0]
    assert upstream.count == 2


async def test_get_json_sends_query_and_accept_header(scripted, make_client) -> None:
    upstream = scripted(200)
    client = make_client(upstream)

    await client.get_json("/v1/products", params={"ids": "a,b,c", "limit": 3})

    sent = upstream.requests[0]
    assert sent.url.path == "/v1/products"
    assert sent.url.params["ids"] == "a,b,c"
    assert sent.url.params["limit"] == "3"
    assert sent.headers["accept"] == "application/json"


async def test_get_json_treats_a_non_json_body_as_unavailable(scripted, make_client) -> None:
    async def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy error</html>")

    client = make_client(scripted(html))

    with pytest.raises(UpstreamUnavailable) as caught:
        await client.get_json("/v1/products")
    assert type(caught.value) is UpstreamUnavailable

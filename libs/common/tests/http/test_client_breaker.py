"""The breaker inside the client: what counts as failure, failing fast, trials, metrics."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from shop_common.http import (
    BreakerState,
    CircuitOpen,
    DeadlineExceeded,
    RetriesExhausted,
    UpstreamFailed,
    UpstreamUnavailable,
)


async def trip(client, fail_max: int) -> None:
    for _ in range(fail_max):
        with pytest.raises(UpstreamUnavailable):
            await client.get_json("/v1/products")
    assert client.breaker.state is BreakerState.OPEN


async def test_opens_after_fail_max_failures_and_then_fails_fast(
    scripted, make_client, sleeps
) -> None:
    upstream = scripted(503)
    client = make_client(upstream, max_attempts=1, breaker_fail_max=3)

    for _ in range(2):
        with pytest.raises(UpstreamFailed):
            await client.get_json("/v1/products")
        assert client.breaker.state is BreakerState.CLOSED
    with pytest.raises(UpstreamFailed):
        await client.get_json("/v1/products")
    assert client.breaker.state is BreakerState.OPEN
    assert upstream.count == 3

    for _ in range(20):
        with pytest.raises(CircuitOpen):
            await client.get_json("/v1/products")
    assert upstream.count == 3  # not one more request reached the transport
    assert sleeps.calls == []


async def test_each_attempt_counts_and_retries_stop_when_it_opens(scripted, make_client) -> None:
    upstream = scripted(httpx.ConnectError)
    client = make_client(upstream, max_attempts=5, breaker_fail_max=2)

    with pytest.raises(CircuitOpen):
        await client.get_json("/v1/products")

    assert upstream.count == 2
    assert client.breaker.state is BreakerState.OPEN


@pytest.mark.parametrize("status", [400, 404, 409, 422])
async def test_client_errors_do_not_count_as_failures(scripted, make_client, status) -> None:
    upstream = scripted(status)
    client = make_client(upstream, breaker_fail_max=2)

    for _ in range(10):
        response = await client.request("GET", "/v1/products/x")
        assert response.status_code == status

    assert client.breaker.state is BreakerState.CLOSED
    assert client.breaker.fail_counter == 0


async def test_a_client_error_shows_the_upstream_is_up(scripted, make_client) -> None:
    upstream = scripted(500, 404, 500)
    client = make_client(upstream, breaker_fail_max=2)

    with pytest.raises(UpstreamFailed):
        await client.request("GET", "/v1/products/x")
    assert (await client.request("GET", "/v1/products/x")).status_code == 404
    with pytest.raises(UpstreamFailed):
        await client.request("GET", "/v1/products/x")

    assert client.breaker.state is BreakerState.CLOSED
    assert client.breaker.fail_counter == 1


async def test_non_idempotent_failures_count_too(scripted, make_client) -> None:
    upstream = scripted(httpx.ReadTimeout)
    client = make_client(upstream, breaker_fail_max=2)

    for _ in range(2):
        with pytest.raises(UpstreamFailed):
            await client.request("POST", "/v1/orders", json={})

    assert client.breaker.state is BreakerState.OPEN


async def test_half_opens_after_reset_timeout_and_closes_on_success(
    scripted, make_client, clock
) -> None:
    upstream = scripted(503)
    client = make_client(upstream, max_attempts=1, breaker_fail_max=2, breaker_reset_timeout=5)
    await trip(client, 2)

    clock.advance(4.9)
    with pytest.raises(CircuitOpen):
        await client.get_json("/v1/products")
    assert upstream.count == 2

    upstream.then(200)
    clock.advance(0.1)
    assert await client.get_json("/v1/products") == {"status": 200}

    assert upstream.count == 3
    assert client.breaker.state is BreakerState.CLOSED


async def test_a_failed_trial_reopens(scripted, make_client, clock) -> None:
    upstream = scripted(503)
    client = make_client(upstream, max_attempts=3, breaker_fail_max=2, breaker_reset_timeout=5)
    with pytest.raises(CircuitOpen):  # 2 attempts trip it, the 3rd is refused
        await client.get_json("/v1/products")

    clock.advance(5)
    with pytest.raises(CircuitOpen):  # the trial fails and re-opens; the retry is refused
        await client.get_json("/v1/products")

    assert upstream.count == 3
    assert client.breaker.state is BreakerState.OPEN


@pytest.mark.parametrize(
    ("answer", "after"), [(200, BreakerState.CLOSED), (503, BreakerState.OPEN)]
)
async def test_half_open_lets_one_trial_through_under_concurrency(
    scripted, make_client, clock, answer, after
) -> None:
    upstream = scripted(503)
    client = make_client(upstream, max_attempts=1, breaker_fail_max=1, breaker_reset_timeout=5)
    await trip(client, 1)
    clock.advance(5)

    release = asyncio.Event()

    async def gated(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(answer, json={})

    upstream.then(gated)
    calls = [asyncio.create_task(client.get_json("/v1/products")) for _ in range(6)]
    await asyncio.sleep(0.01)

    done = [call for call in calls if call.done()]
    assert len(done) == 5
    assert all(isinstance(call.exception(), CircuitOpen) for call in done)
    assert upstream.count == 2  # the trip, then exactly one trial
    assert client.breaker.state is BreakerState.HALF_OPEN

    release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)

    trial_result = next(r for r, c in zip(results, calls, strict=True) if c not in done)
    if answer == 200:
        assert trial_result == {}
    else:
        assert isinstance(trial_result, UpstreamFailed)
    assert client.breaker.state is after
    assert upstream.count == 2


async def test_a_trial_cut_by_the_deadline_frees_the_slot(scripted, make_client, clock) -> None:
    upstream = scripted(503)
    client = make_client(upstream, max_attempts=1, breaker_fail_max=1, breaker_reset_timeout=5)
    await trip(client, 1)
    clock.advance(5)

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200)

    upstream.then(hang, 200)
    with pytest.raises(DeadlineExceeded):
        await client.get_json("/v1/products", deadline=0.05)
    assert client.breaker.state is BreakerState.HALF_OPEN

    assert await client.get_json("/v1/products") == {"status": 200}
    assert client.breaker.state is BreakerState.CLOSED


async def test_metrics_follow_the_calls(scripted, make_client, clock, read_metric) -> None:
    state = "shop_http_client_circuit_state"
    calls = "shop_http_client_calls_total"
    attempts = "shop_http_client_attempts_total"
    upstream = scripted(200, 404, 503)
    client = make_client(upstream, max_attempts=2, breaker_fail_max=2, breaker_reset_timeout=5)
    assert read_metric(state) == 0
    assert read_metric(calls, outcome="success") == 0

    await client.get_json("/v1/products")
    await client.request("GET", "/v1/products/x")
    with pytest.raises(RetriesExhausted):  # two 503 attempts trip the breaker
        await client.get_json("/v1/products")
    assert read_metric(state) == 2
    with pytest.raises(CircuitOpen):
        await client.get_json("/v1/products")

    upstream.then(200)
    clock.advance(5)
    await client.get_json("/v1/products")
    assert read_metric(state) == 0

    assert read_metric(calls, outcome="success") == 2
    assert read_metric(calls, outcome="rejected") == 1
    assert read_metric(calls, outcome="retries_exhausted") == 1
    assert read_metric(calls, outcome="circuit_open") == 1
    assert read_metric(attempts, outcome="success") == 2
    assert read_metric(attempts, outcome="rejected") == 1
    assert read_metric(attempts, outcome="server_error") == 2
    assert read_metric(attempts, outcome="circuit_open") == 1
    transitions = "shop_http_client_circuit_transitions_total"
    assert read_metric(transitions, from_state="closed", to_state="open") == 1
    assert read_metric(transitions, from_state="open", to_state="half-open") == 1
    assert read_metric(transitions, from_state="half-open", to_state="closed") == 1

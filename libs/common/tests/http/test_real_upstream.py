"""The client against a real uvicorn process on loopback: crash, fail fast, recover."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shop_common.http import (
    BreakerState,
    CircuitOpen,
    ResilientHttpClient,
    ResilientHttpClientConfig,
    RetriesExhausted,
)

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UpstreamProcess:
    """uvicorn serving real_upstream_app on a fixed loopback port; can be killed and restarted."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "real_upstream_app:app",
                    "--app-dir",
                    str(HERE),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--lifespan",
                    "off",
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                stdout=log,
                stderr=log,
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    async def wait_ready(self, within: float = 15.0) -> None:
        give_up = time.monotonic() + within
        while time.monotonic() < give_up:
            assert self.process is not None
            assert self.process.poll() is None, self.log.read_text()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        pytest.fail(f"upstream did not listen within {within}s: {self.log.read_text()}")


class CountingTransport(httpx.AsyncBaseTransport):
    """The real pooled transport, counting the requests handed to it."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.count = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[UpstreamProcess]:
    process = UpstreamProcess(free_port(), tmp_path / "upstream.log")
    try:
        yield process
    finally:
        process.kill()


async def test_breaker_trips_on_a_dead_upstream_and_recovers_when_it_returns(
    upstream: UpstreamProcess, metrics, read_metric, clock
) -> None:
    # The breaker's reset timeout runs on a hand-moved clock, so a slow process restart on a
    # loaded machine cannot make the breaker half-open before the test looks.
    reset_timeout = 3.0
    config = ResilientHttpClientConfig(
        target="catalog",
        base_url=f"http://127.0.0.1:{upstream.port}",
        max_attempts=2,
        backoff_base=0.01,
        backoff_max=0.02,
        backoff_jitter=0.0,
        breaker_fail_max=2,
        breaker_reset_timeout=reset_timeout,
    )
    transport = CountingTransport()
    upstream.start()
    await upstream.wait_ready()

    async with ResilientHttpClient(
        config, transport=transport, metrics=metrics, clock=clock
    ) as client:
        page = await client.get_json("/v1/products", params={"ids": "a,b"})
        assert page == {"items": [], "next_cursor": None, "path": "/v1/products"}
        assert client.breaker.state is BreakerState.CLOSED
        assert transport.count == 1

        upstream.kill()
        with pytest.raises(RetriesExhausted) as caught:
            await client.get_json("/v1/products")
        assert isinstance(caught.value.__cause__, httpx.TransportError)
        assert transport.count == 3
        assert client.breaker.state is BreakerState.OPEN
        assert read_metric("shop_http_client_circuit_state") == 2

        started = time.monotonic()
        for _ in range(20):
            with pytest.raises(CircuitOpen):
                await client.get_json("/v1/products")
        assert time.monotonic() - started < 2.0  # generous: the count below is the proof
        assert transport.count == 3  # not one request reached the transport

        upstream.start()  # same port
        await upstream.wait_ready()
        with pytest.raises(CircuitOpen) as still_open:  # back, but the breaker has not looked
            await client.get_json("/v1/products")
        assert transport.count == 3

        assert still_open.value.retry_after is not None
        clock.advance(still_open.value.retry_after + 0.01)
        page = await client.get_json("/v1/products")
        assert page["path"] == "/v1/products"
        assert transport.count == 4  # exactly one trial, and it closed the circuit
        assert client.breaker.state is BreakerState.CLOSED
        assert read_metric("shop_http_client_circuit_state") == 0
        transitions = "shop_http_client_circuit_transitions_total"
        assert read_metric(transitions, from_state="closed", to_state="open") == 1
        assert read_metric(transitions, from_state="open", to_state="half-open") == 1
        assert read_metric(transitions, from_state="half-open", to_state="closed") == 1

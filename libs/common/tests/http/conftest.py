"""Test doubles for shop_common.http: a scripted upstream transport, a fake clock and sleep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from shop_common.http import HttpClientMetrics, ResilientHttpClient, ResilientHttpClientConfig

# A step of the script: a status code, (status, headers), an httpx exception class, or an
# async function taking the request (for slow or gated answers).
Step = int | tuple[int, dict[str, str]] | type[httpx.TransportError] | Callable[..., Awaitable[Any]]


class ScriptedUpstream:
    """Answers requests in order from a script (the last step repeats); records requests."""

    def __init__(self, *script: Step) -> None:
        self.script = list(script) or [200]
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    @property
    def count(self) -> int:
        return len(self.requests)

    def then(self, *script: Step) -> None:
        """Replace what the upstream answers from now on."""
        self.script = list(script)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, int):
            return httpx.Response(step, json={"status": step})
        if isinstance(step, tuple):
            status, headers = step
            return httpx.Response(status, headers=headers, json={"status": status})
        if isinstance(step, type):
            raise step("scripted failure", request=request)
        result = await step(request)
        assert isinstance(result, httpx.Response)
        return result


class FakeClock:
    """Monotonic clock for the breaker's reset timeout, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    """Retry sleep that records the requested waits and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def scripted() -> type[ScriptedUpstream]:
    """The ScriptedUpstream class: `upstream = scripted(503, 503, 200)`."""
    return ScriptedUpstream


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> HttpClientMetrics:
    return HttpClientMetrics(registry)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def read_metric(registry: CollectorRegistry) -> Callable[..., float]:
    """read_metric("shop_http_client_calls_total", outcome="success") for target catalog."""

    def read(name: str, **labels: str) -> float:
        return sample(registry, name, **{"target": "catalog", **labels})

    return read


ClientFactory = Callable[..., ResilientHttpClient]


@pytest.fixture
async def make_client(
    metrics: HttpClientMetrics, clock: FakeClock, sleeps: RecordingSleep
) -> AsyncIterator[ClientFactory]:
    """Build clients on a scripted upstream; config overrides as keywords. Closed afterwards."""
    clients: list[ResilientHttpClient] = []

    def make(
        upstream: ScriptedUpstream, *, real_sleep: bool = False, **config: Any
    ) -> ResilientHttpClient:
        settings = {
            "target": "catalog",
            "base_url": "http://catalog.test",
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "backoff_jitter": 0.0,
            **config,
        }
        client = ResilientHttpClient(
            ResilientHttpClientConfig(**settings),
            transport=upstream.transport,
            metrics=metrics,
            sleep=asyncio.sleep if real_sleep else sleeps,
            clock=clock,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()

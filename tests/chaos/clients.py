"""Storefront clients that keep ordering and cancelling while faults happen, and what they saw.

A client retries a failed or timed-out `POST /v1/orders` with the SAME Idempotency-Key until
it gets an answer or its retry budget is spent, honouring `Retry-After` on 409, 429 and 503.
It cancels some of its accepted orders at a random moment (PENDING or CONFIRMED by then),
retrying the cancel (idempotent) the same way. Every attempt is recorded with the phase of
the fault schedule it was sent in.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from tests.support.orders import order_body

# Answers after which the same request may be sent again (the key makes it safe).
RETRIABLE = {409, 429, 500, 502, 503, 504}
# A cancel's 409 is final (the order was REJECTED), not "in flight".
RETRIABLE_CANCEL = RETRIABLE - {409}
MAX_BACKOFF_SECONDS = 2.0


@dataclass(frozen=True)
class Attempt:
    """One HTTP exchange: what came back (a status, `timeout` or `connection`), and when."""

    op: str  # "place" or "cancel"
    phase: str
    outcome: str
    at: float


@dataclass
class Request:
    """One logical request (a place with its key, or a cancel) and all its attempts."""

    op: str
    customer: str
    key: str | None = None
    order_id: str | None = None
    lines: tuple[tuple[str, int], ...] = ()
    attempts: list[Attempt] = field(default_factory=list)
    # Order ids in 201 answers (place), or the order status in a 200 answer (cancel).
    answered_ids: set[str] = field(default_factory=set)
    answered_status: str | None = None
    final: int | None = None  # the status that ended the retries; None: budget spent

    @property
    def unanswered(self) -> bool:
        return self.final is None


class PhaseClock:
    """The label of the fault being injected right now ("steady" between faults)."""

    def __init__(self) -> None:
        self.current = "steady"
        self.started = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Ledger:
    """Everything every client asked and saw."""

    places: list[Request] = field(default_factory=list)
    cancels: list[Request] = field(default_factory=list)


@dataclass(frozen=True)
class ClientSettings:
    budget_seconds: float  # how long one request is retried before the client gives up
    cancel_share: float  # share of accepted orders the client cancels
    cancel_within_seconds: float  # a cancel is sent 0..this many seconds after the 201
    think_seconds: tuple[float, float]  # pause between two orders
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(8.0, connect=2.0))


class Storefront:
    """One customer placing orders in a loop until told to stop."""

    def __init__(
        self,
        *,
        orders_url: str,
        customer: str,
        token: str,
        products: list[str],
        settings: ClientSettings,
        phases: PhaseClock,
        ledger: Ledger,
        rng: random.Random,
    ) -> None:
        self.orders_url = orders_url
        self.customer = customer
        self.auth = {"Authorization": f"Bearer {token}"}
        self.products = products
        self.settings = settings
        self.phases = phases
        self.ledger = ledger
        self.rng = rng
        self._cancels: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=self.settings.timeout) as http:
            try:
                while not stop.is_set():
                    placed = await self.place(http, self._lines())
                    if placed.final == 201 and self.rng.random() < self.settings.cancel_share:
                        order_id = next(iter(placed.answered_ids))
                        delay = self.rng.uniform(0, self.settings.cancel_within_seconds)
                        task = asyncio.create_task(self._cancel_later(http, order_id, delay))
                        self._cancels.add(task)
                        task.add_done_callback(self._cancels.discard)
                    await asyncio.sleep(self.rng.uniform(*self.settings.think_seconds))
                await asyncio.gather(*self._cancels)
            finally:
                for task in self._cancels:
                    task.cancel()

    def _lines(self) -> tuple[tuple[str, int], ...]:
        chosen = self.rng.sample(self.products, k=self.rng.choice((1, 1, 2)))
        return tuple((product, self.rng.randint(1, 3)) for product in chosen)

    async def place(self, http: httpx.AsyncClient, lines: tuple[tuple[str, int], ...]) -> Request:
        request = Request("place", self.customer, key=str(uuid.uuid4()), lines=lines)
        self.ledger.places.append(request)
        headers = {**self.auth, "Idempotency-Key": str(request.key)}
        body = order_body(*lines)

        async def send() -> httpx.Response:
            return await http.post(f"{self.orders_url}/v1/orders", json=body, headers=headers)

        response = await self._with_retries(request, send, RETRIABLE)
        if response is not None and response.status_code == 201:
            request.answered_ids.add(str(response.json()["id"]))
        return request

    async def _cancel_later(self, http: httpx.AsyncClient, order_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        request = Request("cancel", self.customer, order_id=order_id)
        self.ledger.cancels.append(request)

        async def send() -> httpx.Response:
            url = f"{self.orders_url}/v1/orders/{order_id}/cancel"
            return await http.post(url, headers=self.auth)

        response = await self._with_retries(request, send, RETRIABLE_CANCEL)
        if response is not None and response.status_code == 200:
            request.answered_status = str(response.json()["status"])

    async def _with_retries(
        self,
        request: Request,
        send: Callable[[], Awaitable[httpx.Response]],
        retriable: set[int],
    ) -> httpx.Response | None:
        """Send until a final answer or until the budget is spent (then None)."""
        deadline = time.monotonic() + self.settings.budget_seconds
        for attempt in range(1_000):
            phase = self.phases.current
            response: httpx.Response | None = None
            try:
                response = await send()
                outcome = str(response.status_code)
            except httpx.TimeoutException:
                outcome = "timeout"
            except httpx.TransportError:
                outcome = "connection"
            request.attempts.append(Attempt(request.op, phase, outcome, self.phases.now()))
            if response is not None and response.status_code not in retriable:
                request.final = response.status_code
                return response
            delay = _retry_after(response) or min(
                MAX_BACKOFF_SECONDS, 0.2 * 2**attempt
            ) * self.rng.uniform(0.5, 1.5)
            if time.monotonic() + delay > deadline:
                return None
            await asyncio.sleep(delay)
        return None


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None

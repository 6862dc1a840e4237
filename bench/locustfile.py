"""A storefront's traffic for Locust: browse, search, view, place, poll, cancel (not run in CI).

Point it at any deployment (locust is not a project dependency; uvx fetches it):

    ORDERS_URL=http://127.0.0.1:8002 SHOP_CUSTOMER_TOKEN=$CUSTOMER_TOKEN \\
      uvx locust -f bench/locustfile.py --host http://127.0.0.1:8001

`--host` is Catalog; `ORDERS_URL` is Orders. For a token per simulated shopper instead of
one shared customer, give the services' dev signing secret as `SHOP_JWT_SECRET` (and run
`uvx --with pyjwt locust ...`). Without any token the shoppers only browse.
Like a real storefront, most visits only look: the weights below are per visit, with a
think time of 1-5 s between actions.
"""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from itertools import count
from typing import Any

from locust import HttpUser, between, events, task

ORDERS_URL = os.environ.get("ORDERS_URL", "http://127.0.0.1:8002").rstrip("/")
SEARCH_WORDS = ("mug", "tee", "lamp", "bottle", "notebook", "socks", "blue", "grey", "desk")
FINAL = {"CONFIRMED", "REJECTED", "CANCELLED"}
_shoppers = count(1)


def _token(shopper: int) -> str | None:
    secret = os.environ.get("SHOP_JWT_SECRET")
    if secret:
        import jwt  # pyjwt: only needed for per-shopper tokens

        now = int(time.time())
        claims = {
            "sub": f"locust-{shopper}",
            "roles": ["customer"],
            "iss": os.environ.get("SHOP_JWT_ISSUER", "shop-dev-issuer"),
            "aud": os.environ.get("SHOP_JWT_AUDIENCE", "shop"),
            "iat": now,
            "exp": now + 12 * 3600,
        }
        return jwt.encode(claims, secret, algorithm="HS256")
    return os.environ.get("SHOP_CUSTOMER_TOKEN")


@events.init.add_listener
def _say_what_runs(**_: Any) -> None:
    if not (os.environ.get("SHOP_JWT_SECRET") or os.environ.get("SHOP_CUSTOMER_TOKEN")):
        logging.getLogger(__name__).warning(
            "no SHOP_CUSTOMER_TOKEN or SHOP_JWT_SECRET: browsing only"
        )


class Shopper(HttpUser):
    wait_time = between(1, 5)

    def on_start(self) -> None:
        self.auth = {}
        token = _token(next(_shoppers))
        if token:
            self.auth = {"Authorization": f"Bearer {token}"}
        self.seen: dict[str, str] = {}  # product id -> ETag, as a browser cache keeps it
        self.orders: list[str] = []
        self.browse()

    def _remember(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.seen.setdefault(item["id"], f'"{item["version"]}"')

    @task(30)
    def browse(self) -> None:
        """A catalog page, sometimes the next one too (cursor pagination)."""
        response = self.client.get("/v1/products?limit=20", name="/v1/products")
        if not response.ok:
            return
        page = response.json()
        self._remember(page["items"])
        if page.get("next_cursor") and random.random() < 0.4:
            more = self.client.get(
                f"/v1/products?limit=20&cursor={page['next_cursor']}",
                name="/v1/products?cursor",
            )
            if more.ok:
                self._remember(more.json()["items"])

    @task(15)
    def search(self) -> None:
        word = random.choice(SEARCH_WORDS)
        response = self.client.get(f"/v1/products?q={word}", name="/v1/products?q")
        if response.ok:
            self._remember(response.json()["items"])

    @task(35)
    def view(self) -> None:
        """A product page; revalidates with the ETag it has (304 once the API supports it)."""
        if not self.seen:
            return
        product_id = random.choice(list(self.seen))
        with self.client.get(
            f"/v1/products/{product_id}",
            headers={"If-None-Match": self.seen[product_id]},
            name="/v1/products/{id}",
            catch_response=True,
        ) as response:
            if response.status_code in (200, 304):
                response.success()
                if response.status_code == 200:
                    self.seen[product_id] = response.headers.get("ETag", "")
            elif response.status_code == 404:  # deleted meanwhile: forget it
                self.seen.pop(product_id, None)
                response.success()

    @task(6)
    def place(self) -> None:
        """Buy one to three products we looked at, then watch the order settle."""
        if not self.auth or not self.seen:
            return
        products = random.sample(list(self.seen), k=min(len(self.seen), random.randint(1, 3)))
        body = {"lines": [{"product_id": p, "quantity": random.randint(1, 2)} for p in products]}
        headers = {**self.auth, "Idempotency-Key": str(uuid.uuid4())}
        response = self.client.post(f"{ORDERS_URL}/v1/orders", json=body, headers=headers)
        if response.status_code == 201:
            order_id = response.json()["id"]
            self.orders.append(order_id)
            self.poll(order_id)

    def poll(self, order_id: str, attempts: int = 10) -> None:
        """What an order page does: ask again until the saga has decided."""
        for _ in range(attempts):
            time.sleep(0.5)
            response = self.client.get(
                f"{ORDERS_URL}/v1/orders/{order_id}", headers=self.auth, name="/v1/orders/{id}"
            )
            if not response.ok or response.json()["status"] in FINAL:
                return

    @task(5)
    def my_orders(self) -> None:
        if self.auth:
            self.client.get(f"{ORDERS_URL}/v1/orders", headers=self.auth, name="/v1/orders")

    @task(2)
    def cancel(self) -> None:
        """Change of mind: cancel one of our orders (409 if it was rejected: fine)."""
        if not self.auth or not self.orders:
            return
        order_id = self.orders.pop(random.randrange(len(self.orders)))
        with self.client.post(
            f"{ORDERS_URL}/v1/orders/{order_id}/cancel",
            headers=self.auth,
            name="/v1/orders/{id}/cancel",
            catch_response=True,
        ) as response:
            if response.status_code in (200, 409):
                response.success()

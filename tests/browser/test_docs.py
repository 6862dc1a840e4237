"""`/docs` of both services works in a real browser, with nothing loaded from elsewhere.

Chromium opens each page with every request outside loopback blocked (and recorded), checks
that the operations render, authorizes with a token from `make token`, runs "Try it out" on
`GET /v1/products` and on `POST /v1/orders` (with an Idempotency-Key), and sees 200 and 201.
Screenshots of each step are kept (see the path printed at the end of the run).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, Route, async_playwright, expect

from tests.browser.conftest import REPO, Apis
from tests.support import TEST_JWT_SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def make_token(sub: str, role: str) -> str:
    """What a developer runs: `make token SUB=... ROLE=...` (signed with the APIs' secret)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "token", f"SUB={sub}", f"ROLE={role}"],
        env={**env, "JWT_SECRET": TEST_JWT_SECRET},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium))
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Tab:
    page: Page
    loaded: list[str] = field(default_factory=list)  # what it fetched (from loopback)
    outside: list[str] = field(default_factory=list)  # what it tried elsewhere (blocked)

    def assert_self_contained(self) -> None:
        assert self.outside == [], f"the page tried to load from elsewhere: {self.outside}"
        assert any(url.endswith("/swagger-ui-bundle.js") for url in self.loaded), self.loaded


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    """A page that may reach loopback only: anything else is blocked and recorded."""
    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    opened = Tab(await context.new_page())

    async def loopback_only(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOOPBACK:
            opened.loaded.append(url)
            await route.continue_()
        else:
            opened.outside.append(url)
            await route.abort()

    await context.route("**/*", loopback_only)
    try:
        yield opened
    finally:
        await context.close()


def operation(page: Page, method: str, path: str) -> Locator:
    return page.locator(
        f".opblock.opblock-{method}:has(.opblock-summary-path[data-path='{path}'])"
    ).first


async def open_docs(page: Page, url: str, paths: list[tuple[str, str]]) -> None:
    await page.goto(f"{url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_be_visible(timeout=20_000)
    for method, path in paths:
        await expect(operation(page, method, path)).to_be_visible()


async def authorize(page: Page, token: str) -> None:
    await page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".modal-ux")
    await dialog.locator("input").first.fill(token)
    await dialog.locator("button.modal-btn.authorize").click()
    await expect(dialog.locator("button.modal-btn.btn-done")).to_be_visible()
    await dialog.locator("button.modal-btn.btn-done").click()
    await expect(page.locator(".auth-wrapper button.authorize.locked")).to_be_visible()


async def try_it_out(op: Locator) -> None:
    await op.locator(".opblock-summary").first.click()
    await op.locator("button.try-out__btn").click()


async def execute(op: Locator, status: int) -> str:
    await op.locator("button.execute").click()
    result = op.locator(".live-responses-table .response .response-col_status").first
    await expect(result).to_have_text(str(status), timeout=15_000)
    body: str = await op.locator(
        ".live-responses-table .response-col_description pre"
    ).first.inner_text()
    return body


@pytest.fixture(scope="module")
async def product(apis: Apis) -> str:
    """A product to list and to order (the catalog starts empty)."""
    headers = {"Authorization": f"Bearer {make_token('browser-admin', 'admin')}"}
    async with httpx.AsyncClient(base_url=apis.catalog_url, timeout=10) as client:
        created = await client.post(
            "/v1/products",
            headers=headers,
            json={
                "sku": f"BROWSER-{uuid.uuid4().hex[:8].upper()}",
                "name": "Browser test mug",
                "price_cents": 1250,
                "currency": "EUR",
                "stock_available": 5,
            },
        )
    assert created.status_code == 201, created.text
    product_id: str = created.json()["id"]
    return product_id


async def test_catalog_docs_list_products(
    apis: Apis, product: str, tab: Tab, artifacts: Path
) -> None:
    await open_docs(
        tab.page,
        apis.catalog_url,
        [("get", "/v1/products"), ("post", "/v1/products"), ("patch", "/v1/products/{product_id}")],
    )
    await tab.page.screenshot(path=artifacts / "catalog-docs.png", full_page=True)
    await authorize(tab.page, make_token("browser-admin", "admin"))

    listing = operation(tab.page, "get", "/v1/products")
    await try_it_out(listing)
    body = await execute(listing, 200)

    assert product in [item["id"] for item in json.loads(body)["items"]]
    await tab.page.screenshot(path=artifacts / "catalog-get-products-200.png", full_page=True)
    await listing.locator(".live-responses-table").first.screenshot(
        path=artifacts / "catalog-get-products-200-response.png"
    )
    tab.assert_self_contained()


async def test_orders_docs_place_an_order(
    apis: Apis, product: str, tab: Tab, artifacts: Path
) -> None:
    await open_docs(tab.page, apis.orders_url, [("post", "/v1/orders"), ("get", "/v1/orders")])
    await tab.page.screenshot(path=artifacts / "orders-docs.png", full_page=True)
    await authorize(tab.page, make_token("browser-alice", "customer"))

    place = operation(tab.page, "post", "/v1/orders")
    await try_it_out(place)
    key = str(uuid.uuid4())
    await place.locator("tr[data-param-name='Idempotency-Key'] input").fill(key)
    await place.locator("textarea.body-param__text").fill(
        json.dumps({"lines": [{"product_id": product, "quantity": 1}]}, indent=2)
    )
    body = await execute(place, 201)

    order = json.loads(body)
    assert order["status"] == "PENDING"
    assert order["customer_id"] == "browser-alice"
    await tab.page.screenshot(path=artifacts / "orders-post-order-201.png", full_page=True)
    await place.locator(".live-responses-table").first.screenshot(
        path=artifacts / "orders-post-order-201-response.png"
    )
    tab.assert_self_contained()

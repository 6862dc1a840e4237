"""RED metrics: every request counted and timed under its route template, never its raw path."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from shop_common.web.metrics import RedMetrics, metrics_endpoint


def app() -> FastAPI:
    api = FastAPI()
    api.add_middleware(RedMetrics)
    api.add_route("/metrics", metrics_endpoint, include_in_schema=False)

    @api.get("/things/{thing_id}")
    async def thing(thing_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(thing_id)}

    return api


def count(handler: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_requests_total", {"method": "GET", "handler": handler, "status": status}
    )
    return value or 0.0


async def test_requests_are_labelled_by_route_template_and_status() -> None:
    before_ok, before_404 = count("/things/{thing_id}", "200"), count("none", "404")
    before_bad = count("/things/{thing_id}", "422")
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(3):
            assert (await client.get(f"/things/{uuid.uuid4()}")).status_code == 200
        assert (await client.get("/things/not-a-uuid")).status_code == 422
        assert (await client.get(f"/nowhere/{uuid.uuid4()}")).status_code == 404
        scrape = await client.get("/metrics")
    assert count("/things/{thing_id}", "200") == before_ok + 3
    assert count("/things/{thing_id}", "422") == before_bad + 1
    assert count("none", "404") == before_404 + 1
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    assert "http_request_duration_seconds_bucket" in scrape.text
    # Raw paths never become labels, and the scrape itself is not counted.
    assert "/nowhere/" not in scrape.text
    assert 'handler="/metrics"' not in scrape.text

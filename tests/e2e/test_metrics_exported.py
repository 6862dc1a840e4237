"""Every metric a dashboard panel or a rule reads is exported by a real running process.

The four processes of the e2e stack are scraped after one order went through the saga (so
the series that only appear once something happened exist); a metric renamed in the code,
or misspelt in a dashboard or rule, fails here and not on an operator's screen.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability.references import referenced
from tests.support.e2e import Shop, Stack

pytestmark = pytest.mark.e2e


def metrics_urls(stack: Stack) -> dict[str, str]:
    """Where each process serves /metrics: the workers beside their probes, the APIs on
    their own port."""
    urls = {
        "catalog-api": f"{stack.catalog_url}/metrics",
        "orders-api": f"{stack.orders_url}/metrics",
    }
    for name in ("catalog-worker", "orders-worker"):
        ready = stack.processes[name].ready_url
        assert ready is not None
        urls[name] = ready.replace("/readyz", "/metrics")
    return urls


async def exported(http: httpx.AsyncClient, stack: Stack) -> dict[str, set[str]]:
    """Process -> the names of the samples it exports now (`_bucket`, `_total`, ...)."""
    names = {}
    for process, url in metrics_urls(stack).items():
        response = await http.get(url)
        assert response.status_code == 200, f"{process}: {response.status_code}"
        names[process] = {
            sample.name
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }
    return names


async def test_every_metric_read_by_a_dashboard_or_rule_is_exported(
    shop: Shop, http: httpx.AsyncClient, stack: Stack
) -> None:
    product = await shop.new_product(stock_available=1)
    placed = await shop.place((product["id"], 1))
    assert placed.status_code == 201, placed.text
    assert (await shop.final(placed.json()["id"]))["status"] == "CONFIRMED"

    by_process = await exported(http, stack)
    everything = set().union(*by_process.values())
    missing = {name: where for name, where in referenced().items() if name not in everything}
    assert not missing, "read but exported by no process:\n" + "\n".join(
        f"  {name}: {', '.join(sorted(set(where)))}" for name, where in sorted(missing.items())
    )
    # The check has teeth: the saga's own series are there because the order went through.
    assert "shop_orders_settle_duration_seconds_bucket" in by_process["orders-worker"]
    assert "shop_outbox_lag_seconds" in by_process["catalog-worker"]

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


Sample = tuple[str, frozenset[tuple[str, str]]]

# The saga's counters that must move in the processes that own them when one order is
# confirmed (a series that exists only because its labels were initialised would pass a
# names-only check unmoved).
COUNTED = {
    ("orders-api", "shop_orders_placed_total", ("pricing_source", "catalog")),
    ("catalog-worker", "shop_catalog_reservations_total", ("outcome", "reserved")),
    ("orders-worker", "shop_orders_settled_total", ("status", "CONFIRMED")),
    ("orders-worker", "shop_orders_settle_duration_seconds_count", ("status", "CONFIRMED")),
}


async def scrape(http: httpx.AsyncClient, stack: Stack) -> dict[str, dict[Sample, float]]:
    """Process -> its samples now: (name, labels) -> value."""
    scraped = {}
    assert len(stack.metrics) == 4
    for process, url in stack.metrics.items():
        response = await http.get(url)
        assert response.status_code == 200, f"{process}: {response.status_code}"
        scraped[process] = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }
    return scraped


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_every_metric_read_by_a_dashboard_or_rule_is_exported(
    shop: Shop, http: httpx.AsyncClient, stack: Stack
) -> None:
    before = await scrape(http, stack)
    product = await shop.new_product(stock_available=1)
    placed = await shop.place((product["id"], 1))
    assert placed.status_code == 201, placed.text
    assert (await shop.final(placed.json()["id"]))["status"] == "CONFIRMED"
    after = await scrape(http, stack)

    everything = {name for samples in after.values() for name, _ in samples}
    missing = {name: where for name, where in referenced().items() if name not in everything}
    assert not missing, "read but exported by no process:\n" + "\n".join(
        f"  {name}: {', '.join(sorted(set(where)))}" for name, where in sorted(missing.items())
    )

    # Every process reports its pools: the engine everywhere, the driver pool in the APIs.
    for process, samples in after.items():
        pools = {"engine", "driver"} if process.endswith("-api") else {"engine"}
        for pool in pools:
            assert value(samples, "shop_db_pool_connections_max", pool=pool) > 0, (process, pool)

    # And the saga's counters moved in the processes that own them.
    def moved(process: str, name: str, **labels: str) -> float:
        return value(after[process], name, **labels) - value(before[process], name, **labels)

    for process, name, (label, label_value) in sorted(COUNTED):
        assert moved(process, name, **{label: label_value}) >= 1, (process, name)

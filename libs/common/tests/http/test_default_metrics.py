"""Clients without an explicit metrics object share the default registry without clashing."""

from __future__ import annotations

from prometheus_client import REGISTRY

from shop_common.http import ResilientHttpClient, ResilientHttpClientConfig, default_metrics


async def test_clients_share_the_default_registry(scripted) -> None:
    config = ResilientHttpClientConfig(target="default-registry-test", base_url="http://x.test")
    for _ in range(2):  # a second client for the same target must not re-register metrics
        async with ResilientHttpClient(config, transport=scripted(200).transport) as client:
            await client.get_json("/v1/products")

    labels = {"target": "default-registry-test"}
    assert REGISTRY.get_sample_value("shop_http_client_circuit_state", labels) == 0
    calls = REGISTRY.get_sample_value(
        "shop_http_client_calls_total", {**labels, "outcome": "success"}
    )
    assert calls == 2
    assert default_metrics() is default_metrics()

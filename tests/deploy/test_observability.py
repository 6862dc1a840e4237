"""The observability component as the prod overlays render it (k8s/components/observability):
monitors that scrape every API and worker on the port it serves metrics on, the rules file's
PrometheusRule, the dashboards ConfigMap for Grafana's sidecar, and their sync waves."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from opentelemetry.sdk.trace import sampling

from tests.deploy.crd_schemas import crd_validation_errors
from tests.deploy.environment import container_environment
from tests.deploy.manifests import Manifest, find, is_shop_app, of_kind, pod_spec
from tests.deploy.sync_order import app_workloads, sync_wave
from tests.observability.rules import DASHBOARDS_DIR, prometheus_rule

pytestmark = pytest.mark.deploy

MONITORED = ("prod", "prod-keda", "prod-dr-promoted")
MONITORING_KINDS = ("PodMonitor", "PrometheusRule")


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and present not in expression["values"]:
            return False
        if operator == "NotIn" and present in expression["values"]:
            return False
        if operator == "Exists" and present is None:
            return False
        if operator == "DoesNotExist" and present is not None:
            return False
    return True


def scrape_problems(objs: list[Manifest]) -> list[str]:
    """Every API and worker pod is scraped by exactly one PodMonitor, on the named port its
    `prometheus.io/port` annotation says it serves metrics on, at that annotation's path;
    and no PodMonitor endpoint scrapes a port that is not some selected pod's metrics port."""
    problems = []
    monitors = of_kind(objs, "PodMonitor")
    scraped_ports: dict[str, set[str]] = {m["metadata"]["name"]: set() for m in monitors}
    for workload in app_workloads(objs):
        template = workload["spec"]["template"]
        labels, notes = template["metadata"]["labels"], template["metadata"].get("annotations", {})
        name = workload["metadata"]["name"]
        port = int(notes["prometheus.io/port"])
        named = {
            p["containerPort"]: p.get("name")
            for c in pod_spec(workload)["containers"]
            for p in c.get("ports", [])
        }
        selecting = [m for m in monitors if _matches(m["spec"]["selector"], labels)]
        if len(selecting) != 1:
            problems.append(f"{name}: selected by {len(selecting)} PodMonitors, not 1")
            continue
        (monitor,) = selecting
        endpoints = monitor["spec"]["podMetricsEndpoints"]
        hits = [e for e in endpoints if e.get("port") == named.get(port)]
        if not hits:
            problems.append(f"{name}: metrics on port {port}, which no endpoint scrapes")
        for hit in hits:
            scraped_ports[monitor["metadata"]["name"]].add(hit["port"])
            if hit.get("path", "/metrics") != notes.get("prometheus.io/path", "/metrics"):
                problems.append(f"{name}: scraped at {hit.get('path')}")
    for monitor in monitors:
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            if endpoint.get("port") not in scraped_ports[monitor["metadata"]["name"]]:
                problems.append(
                    f"PodMonitor/{monitor['metadata']['name']}: port {endpoint.get('port')} "
                    "is no selected pod's metrics port"
                )
    return problems


@pytest.mark.parametrize("overlay", MONITORED)
def test_every_process_is_scraped_on_its_metrics_port(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    objs = rendered[overlay]
    assert len(app_workloads(objs)) == 4
    assert scrape_problems(objs) == []


def test_the_scrape_check_catches_a_wrong_port(rendered: dict[str, list[Manifest]]) -> None:
    objs = copy.deepcopy(rendered["prod"])
    monitor = find(objs, "PodMonitor", "shop")
    monitor["spec"]["podMetricsEndpoints"][0]["port"] = "http"
    assert any("no endpoint scrapes" in p for p in scrape_problems(objs))


def test_targets_are_labelled_as_the_rules_expect(rendered: dict[str, list[Manifest]]) -> None:
    for monitor in of_kind(rendered["prod"], "PodMonitor"):
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            targets = {r["targetLabel"]: r for r in endpoint["relabelings"]}
            assert targets["service"]["sourceLabels"] == [
                "__meta_kubernetes_pod_label_app_kubernetes_io_name"
            ]
            assert targets["component"]["sourceLabels"] == [
                "__meta_kubernetes_pod_label_app_kubernetes_io_component"
            ]
            assert targets["job"]["sourceLabels"] == ["service", "component"]
            assert targets["job"]["separator"] == "-"


@pytest.mark.parametrize("overlay", MONITORED)
def test_the_prometheus_rule_is_the_rules_file(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    rule = find(rendered[overlay], "PrometheusRule", "shop")
    assert rule["spec"] == prometheus_rule()["spec"]


def test_the_operator_schema_rejects_a_broken_rule(rendered: dict[str, list[Manifest]]) -> None:
    rule = copy.deepcopy(find(rendered["prod"], "PrometheusRule", "shop"))
    rule["spec"]["groups"][1]["rules"][0]["for"] = 5  # a duration is a string
    rule["spec"]["groups"][1]["rules"][1]["severity"] = "page"  # not a rule field
    assert len(crd_validation_errors(rule)) >= 2
    monitor = copy.deepcopy(find(rendered["prod"], "PodMonitor", "shop"))
    monitor["spec"]["podMetricsEndpoints"][0]["interval"] = "30 seconds"
    assert crd_validation_errors(monitor)


@pytest.mark.parametrize("overlay", MONITORED)
def test_dashboards_reach_grafana_as_the_same_files(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    config = find(rendered[overlay], "ConfigMap", "shop-dashboards")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = {path.name: path.read_text() for path in DASHBOARDS_DIR.glob("*.json")}
    assert config["data"] == files
    uids = [json.loads(text)["uid"] for text in files.values()]
    assert sorted(uids) == ["shop-catalog", "shop-orders", "shop-overview"]


@pytest.mark.parametrize("overlay", MONITORED)
def test_monitoring_is_in_place_before_the_workloads_roll(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    objs = rendered[overlay]
    watching = [*of_kind(objs, *MONITORING_KINDS), find(objs, "ConfigMap", "shop-dashboards")]
    first_workload = min(sync_wave(w) for w in app_workloads(objs))
    namespace = [sync_wave(n) for n in of_kind(objs, "Namespace")]
    for obj in watching:
        assert sync_wave(obj) < first_workload, obj["metadata"]["name"]
        assert all(sync_wave(obj) > wave for wave in namespace), obj["metadata"]["name"]


def test_dev_stays_without_the_operator(rendered: dict[str, list[Manifest]]) -> None:
    """dev runs on clusters without the Prometheus Operator: no monitoring CRs there."""
    assert not of_kind(rendered["dev"], *MONITORING_KINDS)
    assert [o for o in rendered["dev"] if is_shop_app(o)]


@pytest.mark.parametrize("overlay", MONITORED)
@pytest.mark.parametrize(
    "process", ["catalog-api", "catalog-worker", "orders-api", "orders-worker"]
)
def test_every_process_sends_a_tenth_of_new_traces_to_the_collector(
    overlay: str,
    process: str,
    rendered: dict[str, list[Manifest]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """components/tracing: the environment the SDK reads (ADR 0018) gives an OTLP/HTTP
    endpoint and a sampler the SDK understands as parent-based, 10% of new traces."""
    objs = rendered[overlay]
    container = pod_spec(find(objs, "Deployment", process))["containers"][0]
    env = container_environment(objs, container)
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.scheme, endpoint.port) == ("http", 4318)
    assert endpoint.hostname is not None
    assert endpoint.hostname.endswith(".monitoring.svc.cluster.local")
    for name, value in env.items():
        if name.startswith("OTEL_"):
            monkeypatch.setenv(name, value)
    sampler = sampling._get_from_env_or_default()
    assert isinstance(sampler, sampling.ParentBased)
    assert "TraceIdRatioBased{0.1}" in sampler.get_description()


def test_dev_exports_no_traces(rendered: dict[str, list[Manifest]]) -> None:
    objs = rendered["dev"]
    container = pod_spec(find(objs, "Deployment", "orders-api"))["containers"][0]
    assert not [k for k in container_environment(objs, container) if k.startswith("OTEL_")]

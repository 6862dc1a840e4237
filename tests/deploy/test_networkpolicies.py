"""Prod NetworkPolicies allow exactly the intended flows (and the evaluator can say no)."""

from __future__ import annotations

import copy

import pytest

from tests.deploy.manifests import Manifest, find, of_kind, pod_labels
from tests.deploy.netpol import Endpoint, flow_allowed

pytestmark = pytest.mark.deploy

NAMESPACE = "shop"


def pod_of(objs: list[Manifest], kind: str, name: str) -> Endpoint:
    """The endpoint of a rendered workload's pods (labels from its pod template)."""
    workload = find(objs, kind, name)
    return Endpoint(name, NAMESPACE, workload["spec"]["template"]["metadata"]["labels"])


def endpoints(objs: list[Manifest]) -> dict[str, Endpoint]:
    found = {
        name: pod_of(objs, "Deployment", name)
        for name in ("catalog-api", "catalog-worker", "orders-api", "orders-worker")
    }
    found |= {
        f"{service}-migrate": pod_of(objs, "Job", f"{service}-migrate")
        for service in ("catalog", "orders")
    }
    # Pods the operators create (their labels are the operators' documented conventions).
    found["db"] = Endpoint("db", NAMESPACE, {"cnpg.io/cluster": "shop-db", "role": "primary"})
    found["mq"] = Endpoint(
        "mq",
        NAMESPACE,
        {"app.kubernetes.io/name": "shop-mq", "app.kubernetes.io/part-of": "rabbitmq"},
    )
    found["ingress"] = Endpoint(
        "ingress", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}
    )
    found["prometheus"] = Endpoint("prometheus", "monitoring", {"app": "prometheus"})
    found["collector"] = Endpoint(
        "collector", "monitoring", {"app.kubernetes.io/component": "opentelemetry-collector"}
    )
    found["dns"] = Endpoint("dns", "kube-system", {"k8s-app": "kube-dns"})
    found["keda"] = Endpoint("keda", "keda", {"app": "keda-operator"})
    found["cnpg-operator"] = Endpoint("cnpg-operator", "cnpg-system", {"app": "cnpg"})
    found["other"] = Endpoint("other", "default", {"app": "curious"})
    found["internet"] = Endpoint("internet", None, ip="203.0.113.10")
    found["private"] = Endpoint("private", None, ip="10.20.30.40")
    found["cloud-metadata"] = Endpoint("cloud-metadata", None, ip="169.254.169.254")
    return found


APPS = ("catalog-api", "catalog-worker", "orders-api", "orders-worker")

ALLOWED = [
    ("ingress", "catalog-api", 8001),
    ("ingress", "orders-api", 8002),
    ("orders-api", "catalog-api", 8001),
    *[(app, "db", 5432) for app in APPS],
    # Only the workers publish and consume: the APIs write their events to the outbox.
    ("catalog-worker", "mq", 5672),
    ("orders-worker", "mq", 5672),
    ("catalog-migrate", "db", 5432),
    ("orders-migrate", "db", 5432),
    # Metrics on their own ports (ADR 0013); the API ports serve no /metrics.
    ("prometheus", "catalog-api", 9201),
    ("prometheus", "orders-api", 9202),
    ("prometheus", "catalog-worker", 9101),
    ("prometheus", "orders-worker", 9102),
    ("cnpg-operator", "db", 8000),
    ("db", "db", 5432),
    # The WAL archive and base backups go to object storage over HTTPS (postgres-backup.yaml).
    ("db", "internet", 443),
    # The APIs fetch the identity provider's signing keys (JWKS over HTTPS).
    ("catalog-api", "internet", 443),
    ("orders-api", "internet", 443),
    # Spans to the OpenTelemetry Collector, OTLP/HTTP (components/tracing).
    *[(app, "collector", 4318) for app in APPS],
]

DENIED = [
    ("catalog-api", "orders-api", 8002),
    ("catalog-worker", "orders-api", 8002),
    ("orders-worker", "catalog-api", 8001),
    ("other", "catalog-api", 8001),
    ("other", "db", 5432),
    ("ingress", "catalog-worker", 9101),
    ("ingress", "db", 5432),
    ("ingress", "mq", 5672),
    ("catalog-worker", "internet", 443),
    ("orders-worker", "internet", 443),
    ("catalog-migrate", "internet", 443),
    ("orders-api", "internet", 80),
    ("catalog-api", "private", 443),
    ("orders-api", "cloud-metadata", 443),
    ("orders-api", "cloud-metadata", 80),
    ("catalog-migrate", "mq", 5672),
    ("catalog-migrate", "catalog-api", 8001),
    ("orders-api", "catalog-api", 9101),
    ("catalog-api", "db", 5433),
    ("keda", "mq", 5672),
    ("catalog-api", "mq", 5672),
    ("orders-api", "mq", 5672),
    ("ingress", "catalog-api", 9201),
    ("ingress", "orders-api", 9202),
    ("orders-api", "catalog-api", 9201),
    ("prometheus", "catalog-api", 8001),
    ("prometheus", "orders-api", 8002),
    ("catalog-migrate", "collector", 4318),
    ("orders-api", "collector", 4317),
    ("catalog-worker", "prometheus", 9090),
]


@pytest.fixture(scope="module")
def prod(rendered: dict[str, list[Manifest]]) -> tuple[list[Manifest], dict[str, Endpoint]]:
    objs = rendered["prod"]
    return of_kind(objs, "NetworkPolicy"), endpoints(objs)


@pytest.mark.parametrize(("src", "dst", "port"), ALLOWED)
def test_flow_is_allowed(
    src: str, dst: str, port: int, prod: tuple[list[Manifest], dict[str, Endpoint]]
) -> None:
    policies, pods = prod
    assert flow_allowed(policies, pods[src], pods[dst], port)


@pytest.mark.parametrize(("src", "dst", "port"), DENIED)
def test_flow_is_denied(
    src: str, dst: str, port: int, prod: tuple[list[Manifest], dict[str, Endpoint]]
) -> None:
    policies, pods = prod
    assert not flow_allowed(policies, pods[src], pods[dst], port)


@pytest.mark.parametrize("src", [*APPS, "catalog-migrate", "db", "mq"])
def test_dns_is_allowed_and_nothing_else_on_port_53(
    src: str, prod: tuple[list[Manifest], dict[str, Endpoint]]
) -> None:
    policies, pods = prod
    assert flow_allowed(policies, pods[src], pods["dns"], 53, "UDP")
    assert flow_allowed(policies, pods[src], pods["dns"], 53, "TCP")
    assert not flow_allowed(policies, pods[src], pods["internet"], 53, "UDP")


def test_default_deny_covers_every_pod(prod: tuple[list[Manifest], dict[str, Endpoint]]) -> None:
    policies, _ = prod
    deny = [p for p in policies if p["metadata"]["name"] == "default-deny-all"]
    assert len(deny) == 1
    assert deny[0]["spec"]["podSelector"] == {}
    assert set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny[0]["spec"]
    assert "egress" not in deny[0]["spec"]


def test_without_policies_everything_is_allowed(
    prod: tuple[list[Manifest], dict[str, Endpoint]],
) -> None:
    _, pods = prod
    assert flow_allowed([], pods["other"], pods["db"], 5432)


def test_keda_component_opens_exactly_its_queue_depth_flow(
    rendered: dict[str, list[Manifest]],
) -> None:
    objs = rendered["prod-keda"]
    policies, pods = of_kind(objs, "NetworkPolicy"), endpoints(objs)
    assert flow_allowed(policies, pods["keda"], pods["mq"], 5672)
    assert not flow_allowed(policies, pods["keda"], pods["catalog-api"], 8001)
    assert not flow_allowed(policies, pods["keda"], pods["mq"], 15672)


def test_point_in_time_copy_reaches_only_its_operator_and_the_archive(
    rendered: dict[str, list[Manifest]],
) -> None:
    objs = rendered["prod"]
    policies = [*of_kind(objs, "NetworkPolicy"), *of_kind(rendered["pitr"], "NetworkPolicy")]
    pods = endpoints(objs)
    pitr = Endpoint("pitr", NAMESPACE, {"cnpg.io/cluster": "shop-db-pitr", "role": "primary"})
    assert flow_allowed(policies, pods["cnpg-operator"], pitr, 8000)
    assert flow_allowed(policies, pitr, pods["internet"], 443)
    assert flow_allowed(policies, pitr, pods["dns"], 53, "UDP")
    for client in ("catalog-api", "orders-worker", "other"):
        assert not flow_allowed(policies, pods[client], pitr, 5432)


# ------------------------------------------------------------------ k8s/examples/ops


def ops_pod(objs: list[Manifest], namespace: str = NAMESPACE) -> Endpoint:
    """The example's shop-ops Pod (its own labels), in `namespace`."""
    return Endpoint("shop-ops", namespace, pod_labels(find(objs, "Pod", "shop-ops")))


def in_namespace(objs: list[Manifest], namespace: str) -> list[Manifest]:
    """The example applied to another namespace (README: the dev overlay's shop-dev)."""
    moved = copy.deepcopy(objs)
    for obj in moved:
        obj["metadata"]["namespace"] = namespace
    return moved


def test_ops_pod_reaches_the_database_the_broker_and_dns_only(
    rendered: dict[str, list[Manifest]],
) -> None:
    objs = rendered["prod"]
    example = of_kind(rendered["ops"], "NetworkPolicy")
    policies = [*of_kind(objs, "NetworkPolicy"), *example]
    pods, ops = endpoints(objs), ops_pod(rendered["ops"])
    assert flow_allowed(policies, ops, pods["db"], 5432)
    assert flow_allowed(policies, ops, pods["mq"], 5672)
    assert flow_allowed(policies, ops, pods["dns"], 53, "UDP")
    assert flow_allowed(policies, ops, pods["dns"], 53, "TCP")
    for dst, port in (
        ("db", 5433),
        ("mq", 15672),
        ("catalog-api", 8001),
        ("orders-worker", 9102),
        ("internet", 443),
        ("cloud-metadata", 80),
    ):
        assert not flow_allowed(policies, ops, pods[dst], port), (dst, port)
    for src in ("other", "ingress", "prometheus", "catalog-api"):
        assert not flow_allowed(policies, pods[src], ops, 8080), src
    # The example's policies are what open its flows: prod's alone keep it from the database
    # and the broker, and its own egress allows DNS without prod's allow-dns-egress.
    prod_only = of_kind(objs, "NetworkPolicy")
    assert not flow_allowed(prod_only, ops, pods["db"], 5432)
    assert not flow_allowed(prod_only, ops, pods["mq"], 5672)
    assert flow_allowed(example, ops, pods["dns"], 53, "UDP")


@pytest.mark.parametrize(("src", "dst", "port"), ALLOWED + DENIED)
def test_ops_policies_change_no_other_flow(
    src: str, dst: str, port: int, rendered: dict[str, list[Manifest]]
) -> None:
    """They add the Pod's flows only: every flow of prod is as allowed or denied as without."""
    objs = rendered["prod"]
    policies, pods = of_kind(objs, "NetworkPolicy"), endpoints(objs)
    with_ops = [*policies, *of_kind(rendered["ops"], "NetworkPolicy")]
    assert flow_allowed(with_ops, pods[src], pods[dst], port) == flow_allowed(
        policies, pods[src], pods[dst], port
    )


def test_ops_pod_reaches_the_dev_database_and_broker(rendered: dict[str, list[Manifest]]) -> None:
    """Applied in shop-dev (the README's two edits), with the dev overlay's own pods."""
    objs = rendered["dev"]
    example = in_namespace(rendered["ops"], "shop-dev")
    policies = [*of_kind(objs, "NetworkPolicy"), *of_kind(example, "NetworkPolicy")]
    ops = ops_pod(example, "shop-dev")
    for name, port in (("shop-db", 5432), ("shop-mq", 5672)):
        server = Endpoint(name, "shop-dev", pod_labels(find(objs, "StatefulSet", name)))
        assert flow_allowed(policies, ops, server, port), name
    worker = Endpoint(
        "catalog-worker",
        "shop-dev",
        pod_labels(find(objs, "Deployment", "catalog-worker")),
    )
    mq = Endpoint("shop-mq", "shop-dev", pod_labels(find(objs, "StatefulSet", "shop-mq")))
    assert flow_allowed(policies, worker, mq, 5672), "the workers still reach the broker"

"""The invariants that matter, on every rendered overlay, and proof that each rule can fail."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.deploy import invariants
from tests.deploy.manifests import (
    NAMESPACES,
    OVERLAYS,
    SERVICES,
    SERVING_OVERLAYS,
    Manifest,
    all_containers,
    find,
    of_kind,
    pod_spec,
)

pytestmark = pytest.mark.deploy

# Secrets that an overlay uses but nothing in its render makes (base has no database).
# Everything else must resolve: prod's come from ExternalSecrets and the operators.
EXTERNAL_SECRETS = {
    "base": frozenset({"shop-db-superuser"}),
    **{overlay: frozenset() for overlay in OVERLAYS},
}

Rule = Callable[[list[Manifest]], list[str]]
RULES: dict[str, Rule] = {
    "probes": invariants.probe_problems,
    "resources": invariants.resource_problems,
    "security context": invariants.security_context_problems,
    "service accounts": invariants.service_account_problems,
    "topology spread": invariants.topology_spread_problems,
    "autoscalers": invariants.autoscaler_problems,
    "disruption budgets": invariants.disruption_budget_problems,
    "secrets": invariants.secret_problems,
    "images": invariants.image_problems,
    "env expansion": invariants.env_expansion_problems,
    "service ports": invariants.service_port_problems,
}


# ops: the example's Pod (k8s/examples/ops) keeps the rules a pod of the shop keeps.
@pytest.mark.parametrize("overlay", ["base", *OVERLAYS, "ops"])
@pytest.mark.parametrize("rule", RULES)
def test_rule_holds(rule: str, overlay: str, rendered: dict[str, list[Manifest]]) -> None:
    problems = RULES[rule](rendered[overlay])
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("overlay", ["base", *OVERLAYS])
def test_references_resolve(overlay: str, rendered: dict[str, list[Manifest]]) -> None:
    problems = invariants.reference_problems(rendered[overlay], EXTERNAL_SECRETS[overlay])
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lands_in_the_overlay_namespace(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    problems = invariants.namespace_problems(rendered[overlay], NAMESPACES[overlay])
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("overlay", SERVING_OVERLAYS)
def test_each_api_and_worker_has_exactly_one_autoscaler(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    targets = invariants.autoscaler_targets(rendered[overlay])
    expected = {f"{s}-{p}": 1 for s in SERVICES for p in ("api", "worker")}
    assert dict(targets) == expected


# ------------------------------------------------------------------ each rule can fail


def _break_deployment(objs: list[Manifest], edit: Callable[[Manifest], None]) -> list[Manifest]:
    broken = copy.deepcopy(objs)
    edit(find(broken, "Deployment", "catalog-api"))
    return broken


def _container(deployment: Manifest) -> Manifest:
    container: Manifest = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


BREAKAGES: dict[str, tuple[Rule, Callable[[Manifest], None]]] = {
    "no readiness probe": (
        invariants.probe_problems,
        lambda d: _container(d).pop("readinessProbe"),
    ),
    "no memory limit": (
        invariants.resource_problems,
        lambda d: _container(d)["resources"]["limits"].pop("memory"),
    ),
    "writable root filesystem": (
        invariants.security_context_problems,
        lambda d: _container(d)["securityContext"].update(readOnlyRootFilesystem=False),
    ),
    "capabilities kept": (
        invariants.security_context_problems,
        lambda d: _container(d)["securityContext"]["capabilities"].update(drop=[]),
    ),
    "seccomp unconfined": (
        invariants.security_context_problems,
        lambda d: [
            _container(d)["securityContext"].pop("seccompProfile"),
            d["spec"]["template"]["spec"]["securityContext"].update(
                seccompProfile={"type": "Unconfined"}
            ),
        ],
    ),
    "token mounted": (
        invariants.service_account_problems,
        lambda d: d["spec"]["template"]["spec"].update(automountServiceAccountToken=True),
    ),
    "latest image": (
        invariants.image_problems,
        lambda d: _container(d).update(image="registry.example.com/shop/catalog:latest"),
    ),
    "untagged image": (
        invariants.image_problems,
        lambda d: _container(d).update(image="registry.example.com/shop/catalog"),
    ),
    "undefined $(VAR)": (
        invariants.env_expansion_problems,
        lambda d: _container(d)["env"].insert(
            0, {"name": "EARLY", "value": "$(CATALOG_DB_PASSWORD)"}
        ),
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_rule_detects(breakage: str, rendered: dict[str, list[Manifest]]) -> None:
    rule, edit = BREAKAGES[breakage]
    assert rule(rendered["prod"]) == []
    assert rule(_break_deployment(rendered["prod"], edit)) != []


def test_autoscaler_rule_detects_a_second_or_missing_autoscaler(
    rendered: dict[str, list[Manifest]],
) -> None:
    doubled = copy.deepcopy(rendered["prod-keda"])
    hpa = copy.deepcopy(find(doubled, "HorizontalPodAutoscaler", "catalog-api"))
    hpa["metadata"]["name"] = "catalog-worker"
    hpa["spec"]["scaleTargetRef"]["name"] = "catalog-worker"
    doubled.append(hpa)  # an HPA next to KEDA's ScaledObject
    assert any("catalog-worker" in p for p in invariants.autoscaler_problems(doubled))

    missing = [
        o
        for o in rendered["prod"]
        if o["metadata"]["name"] != "orders-api" or o["kind"] != "HorizontalPodAutoscaler"
    ]
    assert any("orders-api" in p for p in invariants.autoscaler_problems(missing))


def test_secret_rule_detects_a_real_looking_value(rendered: dict[str, list[Manifest]]) -> None:
    objs = copy.deepcopy(rendered["dev"])
    secret = find(objs, "Secret", "catalog-secrets")
    secret["stringData"]["CATALOG_AMQP_URL"] = "amqp://shop:8f3kq0ZpL2@shop-mq:5672/"
    secret["stringData"]["CATALOG_JWT_SECRET"] = "s3cr3t-value-that-looks-real-enough-to-use"
    assert len(invariants.secret_problems(objs)) == 2
    assert invariants.credential_is_placeholder("amqp://shop:change-me@host:5672/")
    assert not invariants.credential_is_placeholder("hunter2")


def test_reference_rule_detects_a_missing_secret(rendered: dict[str, list[Manifest]]) -> None:
    objs = [o for o in rendered["dev"] if o["metadata"]["name"] != "shop-db-superuser"]
    assert any("shop-db-superuser" in p for p in invariants.reference_problems(objs, frozenset()))


# ------------------------------------------------------------------ service-specific facts


@pytest.mark.parametrize("overlay", ["base", *SERVING_OVERLAYS])
@pytest.mark.parametrize("service", SERVICES)
def test_one_image_two_entrypoints_and_ports(
    service: str, overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    objs = rendered[overlay]
    api = find(objs, "Deployment", f"{service}-api")
    worker = find(objs, "Deployment", f"{service}-worker")
    job = find(objs, "Job", f"{service}-migrate")
    images = {c["image"] for d in (api, worker, job) for c in all_containers(pod_spec(d))}
    assert len(images) == 1, f"{service} uses several images: {images}"
    assert _container(api)["command"] == [f"{service}-api"]
    assert _container(worker)["command"] == [f"{service}-worker"]
    config = find(objs, "ConfigMap", f"{service}-config")["data"]
    prefix = service.upper()
    assert config[f"{prefix}_HOST"] == "0.0.0.0"
    ports = {"catalog": (8001, 9101, 9201), "orders": (8002, 9102, 9202)}[service]
    api_ports = {p["name"]: p["containerPort"] for p in _container(api)["ports"]}
    assert api_ports == {
        "http": int(config[f"{prefix}_PORT"]),
        "metrics": int(config[f"{prefix}_METRICS_PORT"]),
    }
    assert (api_ports["http"], api_ports["metrics"]) == (ports[0], ports[2])
    worker_port = _container(worker)["ports"][0]["containerPort"]
    assert worker_port == int(config[f"{prefix}_WORKER_PORT"]) == ports[1]
    for deployment, scraped in ((api, ports[2]), (worker, ports[1])):
        container = _container(deployment)
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        # Prometheus scrapes the metrics port: the API port serves no /metrics.
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(scraped)
        assert annotations["prometheus.io/path"] == "/metrics"
    # The API's Service (what Orders and the Ingress reach) exposes the API port only.
    service_ports = find(objs, "Service", f"{service}-api")["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in service_ports] == [(ports[0], "http")]


@pytest.mark.parametrize("service", SERVICES)
def test_migration_job_provisions_as_superuser_then_migrates_as_the_service(
    service: str, rendered: dict[str, list[Manifest]]
) -> None:
    job = find(rendered["prod"], "Job", f"{service}-migrate")
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    (provision,) = spec["initContainers"]
    (migrate,) = spec["containers"]
    assert provision["command"] == ["shop-provision", service]
    assert migrate["command"] == [f"{service}-migrate"]

    def secrets_of(container: Manifest) -> set[str]:
        return {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }

    assert "shop-db-superuser" in secrets_of(provision)
    assert "shop-db-superuser" not in secrets_of(migrate)
    migrate_env = {e["name"]: e.get("value", "") for e in migrate["env"]}
    assert migrate_env[f"{service.upper()}_DATABASE_URL"].startswith(
        f"postgresql+asyncpg://{service}_svc:"
    )
    assert job["spec"]["backoffLimit"] <= 5
    assert job["spec"]["activeDeadlineSeconds"] > 0
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"


def test_orders_reaches_catalog_through_its_service(rendered: dict[str, list[Manifest]]) -> None:
    objs = rendered["prod"]
    url = find(objs, "ConfigMap", "orders-config")["data"]["ORDERS_CATALOG_URL"]
    service = find(objs, "Service", "catalog-api")
    assert url == f"http://catalog-api:{service['spec']['ports'][0]['port']}"


def test_dev_is_single_replica(rendered: dict[str, list[Manifest]]) -> None:
    for hpa in of_kind(rendered["dev"], "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] == hpa["spec"]["maxReplicas"] == 1
    for statefulset in of_kind(rendered["dev"], "StatefulSet"):
        assert statefulset["spec"]["replicas"] == 1


def test_prod_autoscaling_is_tuned_per_service(rendered: dict[str, list[Manifest]]) -> None:
    objs = rendered["prod"]
    catalog = find(objs, "HorizontalPodAutoscaler", "catalog-api")["spec"]
    orders = find(objs, "HorizontalPodAutoscaler", "orders-api")["spec"]
    assert catalog["maxReplicas"] > orders["maxReplicas"], "catalog reads scale wider"
    assert catalog["minReplicas"] >= 3, "HA across zones"
    assert orders["minReplicas"] >= 3, "HA across zones"
    down_catalog = catalog["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
    down_orders = orders["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
    assert down_orders > down_catalog, "orders holds capacity longer after a peak"
    for name in ("catalog-worker", "orders-worker"):
        assert find(objs, "HorizontalPodAutoscaler", name)["spec"]["minReplicas"] >= 2


def test_prod_namespace_enforces_restricted_pod_security(
    rendered: dict[str, list[Manifest]],
) -> None:
    labels = find(rendered["prod"], "Namespace", "shop")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_prod_runs_ha_database_and_broker(rendered: dict[str, list[Manifest]]) -> None:
    objs = rendered["prod"]
    assert find(objs, "RabbitmqCluster", "shop-mq")["spec"]["replicas"] == 3
    cluster = find(objs, "Cluster", "shop-db")["spec"]
    assert cluster["instances"] >= 3
    assert cluster["bootstrap"]["initdb"]["database"] == "shop"
    assert cluster["enableSuperuserAccess"] is True, "shop-provision needs the superuser"
    assert not of_kind(objs, "Secret"), "prod renders no Secret: the secret manager owns them"


def test_keda_scales_each_worker_on_its_main_queue(rendered: dict[str, list[Manifest]]) -> None:
    objs = rendered["prod-keda"]
    for service in SERVICES:
        scaled = find(objs, "ScaledObject", f"{service}-worker")["spec"]
        assert scaled["scaleTargetRef"]["name"] == f"{service}-worker"
        rabbit = [t for t in scaled["triggers"] if t["type"] == "rabbitmq"]
        assert len(rabbit) == 1
        assert rabbit[0]["metadata"]["queueName"] == f"{service}.events"
        assert rabbit[0]["metadata"]["mode"] == "QueueLength"
        auth = find(objs, "TriggerAuthentication", rabbit[0]["authenticationRef"]["name"])
        assert auth["spec"]["secretTargetRef"][0]["name"] == f"{service}-secrets"
    remaining = {h["metadata"]["name"] for h in of_kind(objs, "HorizontalPodAutoscaler")}
    assert remaining == {"catalog-api", "orders-api"}

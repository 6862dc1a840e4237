"""The public edge in production: one Ingress, TLS from cert-manager, body size and per-client
rate limits, and only the APIs' /v1/ routes (never metrics, docs, the spec or the probes)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import pytest

from tests.deploy.environment import build_settings, container_environment
from tests.deploy.manifests import SERVICES, Manifest, find, of_kind, pod_spec

pytestmark = pytest.mark.deploy

PROD = ("prod", "prod-keda", "prod-dr-promoted")
NGINX = "nginx.ingress.kubernetes.io/"
ROUTES = {"/v1/products": "catalog-api", "/v1/orders": "orders-api"}
_SIZE = re.compile(r"^(\d+)([kKmM]?)$")


def nginx_size(value: str) -> int:
    """ingress-nginx's proxy-body-size ("64k", "1m", "8192") in bytes."""
    match = _SIZE.match(value)
    assert match, f"not a size: {value!r}"
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]


def ingress_problems(objs: list[Manifest]) -> list[str]:
    ingresses = of_kind(objs, "Ingress")
    if len(ingresses) != 1:
        return [f"want one Ingress, found {len(ingresses)}"]
    ingress = ingresses[0]
    spec, annotations = ingress["spec"], ingress["metadata"].get("annotations", {})
    problems = []
    if spec.get("ingressClassName") != "nginx":
        problems.append("not for ingress-nginx (ingressClassName)")
    if not annotations.get("cert-manager.io/cluster-issuer"):
        problems.append("no cert-manager issuer: the certificate is nobody's job")
    hosts = {rule.get("host") for rule in spec.get("rules", [])}
    tls_hosts = {h for tls in spec.get("tls", []) if tls.get("secretName") for h in tls["hosts"]}
    if None in hosts or not hosts <= tls_hosts:
        problems.append(f"hosts {hosts} not all served over TLS ({tls_hosts})")
    if annotations.get(f"{NGINX}force-ssl-redirect") != "true":
        problems.append("plain HTTP is not redirected to HTTPS")
    for limit in ("limit-rps", "limit-connections"):
        value = annotations.get(f"{NGINX}{limit}", "")
        if not value.isdigit() or int(value) < 1:
            problems.append(f"no per-client {limit}")
    if f"{NGINX}proxy-body-size" not in annotations:
        problems.append("no body size limit (ingress-nginx's default is 1m)")
    services = {s["metadata"]["name"]: s for s in of_kind(objs, "Service")}
    routes = {}
    for rule in spec.get("rules", []):
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            routes[path["path"]] = backend["name"]
            if path.get("pathType") != "Prefix":
                problems.append(f"{path['path']}: pathType {path.get('pathType')}")
            ports = services.get(backend["name"], {}).get("spec", {}).get("ports", [])
            if not any(p.get("name") == backend["port"].get("name") for p in ports):
                problems.append(f"{path['path']}: no port {backend['port']} on {backend['name']}")
    if routes != ROUTES:
        problems.append(f"routes {routes}, want exactly {ROUTES}")
    return problems


@pytest.mark.parametrize("overlay", PROD)
def test_prod_has_a_tls_ingress_with_limits_and_only_the_api_routes(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    assert ingress_problems(rendered[overlay]) == []


def test_dev_has_no_ingress(rendered: dict[str, list[Manifest]]) -> None:
    assert of_kind(rendered["dev"], "Ingress") == []  # kubectl port-forward, docs/operations.md


def _edit(path: list[str | int], value: object) -> Callable[[Manifest], None]:
    def edit(ingress: Manifest) -> None:
        node = ingress
        for key in path[:-1]:
            node = node[key]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return edit


BREAKAGES = {
    "no TLS": _edit(["spec", "tls"], None),
    "no issuer": _edit(["metadata", "annotations", "cert-manager.io/cluster-issuer"], None),
    "no rate limit": _edit(["metadata", "annotations", f"{NGINX}limit-rps"], None),
    "no body limit": _edit(["metadata", "annotations", f"{NGINX}proxy-body-size"], None),
    "metrics routed": _edit(["spec", "rules", 0, "http", "paths", 0, "path"], "/"),
    "the metrics port as backend": _edit(
        ["spec", "rules", 0, "http", "paths", 0, "backend", "service", "port"], {"name": "metrics"}
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_ingress_rule_detects(breakage: str, rendered: dict[str, list[Manifest]]) -> None:
    broken = copy.deepcopy(rendered["prod"])
    BREAKAGES[breakage](find(broken, "Ingress", "shop"))
    assert ingress_problems(broken) != []


@pytest.mark.parametrize("overlay", PROD)
@pytest.mark.parametrize("service", SERVICES)
def test_the_ingress_agrees_with_the_services_settings(
    overlay: str, service: str, rendered: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body limit at the edge is the service's own; Location names the Ingress's host."""
    objs = rendered[overlay]
    (ingress,) = of_kind(objs, "Ingress")
    container = pod_spec(find(objs, "Deployment", f"{service}-api"))["containers"][0]
    settings = build_settings(service, container_environment(objs, container), monkeypatch)
    body_size = ingress["metadata"]["annotations"][f"{NGINX}proxy-body-size"]

    assert nginx_size(body_size) == settings.max_body_bytes
    assert str(settings.public_base_url) == f"https://{ingress['spec']['rules'][0]['host']}/"

"""k8s/examples/ops: shop-ops in the cluster (ADR 0014), a one-off Pod of the ops image.

It renders and validates with the other kustomizations (test_kubernetes_schemas), keeps
the invariants (test_invariants), passes checkov (test_checkov), and its NetworkPolicies
are checked with the others (test_networkpolicies). Here: what the Pod runs, that every
variable it sets is one shop-ops' settings read (or only feeds one), that the services'
Secrets and ConfigMaps it reads exist in the overlays, and that from that environment
shop-ops reaches each service exactly as the service's worker does.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import re

import pytest
from pydantic_settings import BaseSettings

import shop_ops.settings
from tests.deploy import invariants
from tests.deploy.dockerfiles import parse_dockerfile
from tests.deploy.environment import build_settings, container_environment, settings_class
from tests.deploy.manifests import (
    OPS_IMAGE,
    SERVICES,
    Manifest,
    all_containers,
    dockerfile_as_built,
    find,
    pod_labels,
    pod_spec,
)

pytestmark = pytest.mark.deploy

POD = "shop-ops"
NAMESPACE = "shop"
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def settings_variables(cls: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads: its prefix and each field's name."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


def ops_settings_variables() -> set[str]:
    """Every variable shop_ops.settings reads, from its settings classes (so a renamed or
    added setting changes what the Pod must set)."""
    classes = [
        cls
        for _, cls in inspect.getmembers(shop_ops.settings, inspect.isclass)
        if issubclass(cls, BaseSettings) and cls.__module__ == shop_ops.settings.__name__
    ]
    assert classes, "shop_ops.settings reads no environment?"
    return set().union(*(settings_variables(cls) for cls in classes))


def _pod(rendered: dict[str, list[Manifest]]) -> Manifest:
    return find(rendered["ops"], "Pod", POD)


def _container(pod: Manifest) -> Manifest:
    (container,) = all_containers(pod_spec(pod))
    return container


def test_the_pod_runs_the_ops_image_and_waits_for_exec(
    rendered: dict[str, list[Manifest]],
) -> None:
    objs = rendered["ops"]
    assert {o["kind"] for o in objs} == {"Pod", "NetworkPolicy"}
    assert invariants.namespace_problems(objs, NAMESPACE) == []
    pod = _pod(rendered)
    labels = pod_labels(pod)
    # A label of its own: the services' policies, budgets and monitors never select it.
    assert labels["app.kubernetes.io/name"] == POD
    assert labels["app.kubernetes.io/name"] not in SERVICES
    spec = pod_spec(pod)
    assert spec["restartPolicy"] == "Never"
    assert 0 < spec["activeDeadlineSeconds"] <= 24 * 3600, "a forgotten Pod stops on its own"
    container = _container(pod)
    # The ops image's own command (no server), and nothing that would take traffic.
    image_cmd = parse_dockerfile(dockerfile_as_built(OPS_IMAGE))[-1].arguments("CMD")[-1]
    assert container["command"] == json.loads(image_cmd)
    for absent in ("ports", "livenessProbe", "readinessProbe", "startupProbe"):
        assert absent not in container, absent


def test_the_image_is_named_and_tagged_like_the_services(
    rendered: dict[str, list[Manifest]],
) -> None:
    """registry.example.com/shop/<image>:<release>, as overlays/prod names the services'."""
    expected = set()
    for service in SERVICES:
        api = find(rendered["prod"], "Deployment", f"{service}-api")
        name, tag = _container_image(pod_spec(api)["containers"][0]).rsplit(":", 1)
        assert name.endswith(f"/{service}"), name
        expected.add(f"{name.removesuffix(service)}{OPS_IMAGE}:{tag}")
    assert len(expected) == 1, f"the services' images disagree: {expected}"
    assert _container_image(_container(_pod(rendered))) == expected.pop()


def _container_image(container: Manifest) -> str:
    image: str = container["image"]
    return image.split("@", 1)[0]


def test_every_variable_the_pod_sets_is_read_by_shop_ops_or_only_feeds_one(
    rendered: dict[str, list[Manifest]],
) -> None:
    container = _container(_pod(rendered))
    assert "envFrom" not in container, "envFrom would bring variables shop-ops does not read"
    entries = container["env"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), "a variable set twice"
    read = ops_settings_variables()
    # Kubernetes composes a value from variables defined before it ($(VAR)): those only
    # feed a variable shop-ops reads.
    feeding = {
        reference
        for entry in entries
        if entry["name"] in read
        for reference in _REFERENCE.findall(entry.get("value", ""))
    }
    unread = [name for name in names if name not in read and name not in feeding]
    assert unread == [], f"set, but read by no shop-ops setting: {unread}"
    # `shop-ops reconcile` builds each service's settings from the same environment: the
    # variables that only feed a URL must not be one of those settings either.
    service_settings = set().union(*(settings_variables(settings_class(s)) for s in SERVICES))
    helpers = feeding - read
    assert not helpers & service_settings, f"helpers that are settings: {helpers}"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_pod_sets_what_shop_ops_reads_where_the_worker_sets_it(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    """Every setting shop-ops reads that a service's worker sets (its URLs) is set; the
    rest (the exchange) stays the services' default, as in the worker."""
    names = {e["name"] for e in _container(_pod(rendered))["env"]}
    read = ops_settings_variables()
    for service in SERVICES:
        worker = pod_spec(find(rendered[overlay], "Deployment", f"{service}-worker"))
        worker_env = container_environment(rendered[overlay], worker["containers"][0])
        prefix = f"{service.upper()}_"
        wanted = {name for name in read if name.startswith(prefix) and name in worker_env}
        assert wanted, f"the {service} worker sets nothing shop-ops reads?"
        assert wanted <= names, f"not set for {service}: {sorted(wanted - names)}"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_secrets_and_config_maps_it_reads_exist_in_the_overlay(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    objs = [*rendered[overlay], *rendered["ops"]]
    problems = invariants.reference_problems(objs, frozenset())
    assert problems == [], "\n".join(problems)
    assert invariants.env_expansion_problems(objs) == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_shop_ops_reaches_each_service_as_its_worker_does(
    overlay: str, rendered: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """shop-ops' targets, built from the Pod's environment in that overlay, are the
    database URL (role, host, database), schema, broker URL (user) and exchange the
    service's own worker runs with."""
    objs = [*rendered[overlay], *rendered["ops"]]
    workers = {}
    for service in SERVICES:
        worker = pod_spec(find(objs, "Deployment", f"{service}-worker"))
        env = container_environment(objs, worker["containers"][0])
        workers[service] = build_settings(service, env, monkeypatch)
    for name in [n for n in os.environ if n.startswith(("CATALOG_", "ORDERS_"))]:
        monkeypatch.delenv(name)
    for name, value in container_environment(objs, _container(_pod(rendered))).items():
        monkeypatch.setenv(name, value)
    targets = shop_ops.settings.load_targets()
    for service in SERVICES:
        target, worker_settings = targets[shop_ops.settings.Service(service)], workers[service]
        assert target.database_url == worker_settings.database_url
        assert target.database_url.startswith(f"postgresql+asyncpg://{service}_svc:")
        assert target.schema == worker_settings.db_schema
        assert target.amqp_url == worker_settings.amqp_url.get_secret_value()
        assert target.exchange == worker_settings.exchange


def test_the_rules_see_a_bare_pod(rendered: dict[str, list[Manifest]]) -> None:
    """The invariants read a Pod's own spec (manifests.pod_templates): broken, they say so."""
    objs = copy.deepcopy(rendered["ops"])
    pod = find(objs, "Pod", POD)
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    container["resources"]["limits"].pop("memory")
    spec["automountServiceAccountToken"] = True
    container["image"] = "registry.example.com/shop/ops:latest"
    container["env"].insert(0, {"name": "EARLY", "value": "$(CATALOG_DB_PASSWORD)"})
    for rule in (
        invariants.security_context_problems,
        invariants.resource_problems,
        invariants.service_account_problems,
        invariants.image_problems,
        invariants.env_expansion_problems,
    ):
        assert rule(rendered["ops"]) == [], rule.__name__
        assert any(POD in problem for problem in rule(objs)), rule.__name__

"""Prod's Secrets come from the External Secrets Operator with exactly the templates' keys."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.deploy.invariants import secret_values
from tests.deploy.manifests import Manifest, find, of_kind, qualified_name

pytestmark = pytest.mark.deploy

PROD_OVERLAYS = ("prod", "prod-keda", "prod-dr", "prod-dr-promoted")


def template_keys(base: list[Manifest]) -> dict[str, set[str]]:
    """The contract: each Secret template of k8s/base and its keys."""
    return {
        s["metadata"]["name"]: {k for k, _ in secret_values(s)} for s in of_kind(base, "Secret")
    }


def external_secret_problems(templates: dict[str, set[str]], objs: list[Manifest]) -> list[str]:
    problems = []
    stores = {s["metadata"]["name"] for s in of_kind(objs, "SecretStore")}
    by_target: dict[str, list[Manifest]] = {}
    for external in of_kind(objs, "ExternalSecret"):
        target = external["spec"].get("target", {}).get("name", external["metadata"]["name"])
        by_target.setdefault(target, []).append(external)
        ref = external["spec"]["secretStoreRef"]
        if ref.get("kind") != "SecretStore" or ref["name"] not in stores:
            problems.append(f"{qualified_name(external)}: reads {ref}, not a rendered SecretStore")
        if external["spec"].get("dataFrom"):
            problems.append(f"{qualified_name(external)}: dataFrom makes keys nobody listed")
    for name, keys in templates.items():
        makers = by_target.get(name, [])
        if len(makers) != 1:
            problems.append(f"Secret {name}: made by {len(makers)} ExternalSecrets, want 1")
            continue
        made = [entry["secretKey"] for entry in makers[0]["spec"].get("data", [])]
        if sorted(made) != sorted(keys):
            problems.append(f"Secret {name}: keys {sorted(made)}, the template has {sorted(keys)}")
    return problems


@pytest.mark.parametrize("overlay", PROD_OVERLAYS)
def test_external_secrets_make_exactly_the_template_keys(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    templates = template_keys(rendered["base"])
    assert set(templates) == {"catalog-secrets", "orders-secrets"}
    problems = external_secret_problems(templates, rendered[overlay])
    assert problems == [], "\n".join(problems)
    assert not of_kind(rendered[overlay], "Secret"), "no Secret object in a prod render"


@pytest.mark.parametrize(
    "edit",
    [
        lambda e: e["spec"]["data"].pop(),
        lambda e: e["spec"]["data"].append({"secretKey": "EXTRA", "remoteRef": {"key": "x"}}),
        lambda e: e["spec"]["data"][0].update(secretKey="CATALOG_DB_PASSWD"),
        lambda e: e["spec"]["target"].update(name="catalog-secret"),
        lambda e: e["spec"]["secretStoreRef"].update(name="elsewhere"),
    ],
    ids=["missing key", "extra key", "misspelt key", "other target", "unknown store"],
)
def test_external_secret_rule_detects(
    edit: Callable[[Manifest], object], rendered: dict[str, list[Manifest]]
) -> None:
    objs = copy.deepcopy(rendered["prod"])
    edit(find(objs, "ExternalSecret", "catalog-secrets"))
    assert external_secret_problems(template_keys(rendered["base"]), objs) != []

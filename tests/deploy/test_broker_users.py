"""Prod gives each service a broker user of its own (components/rabbitmq-users) whose
credentials come from the service's own AMQP URL; what the users may do is checked against
a real broker in tests/integration/test_broker_permissions.py."""

from __future__ import annotations

import copy

import pytest

from tests.deploy.crd_schemas import crd_validation_errors as schema_errors
from tests.deploy.manifests import SERVICES, Manifest, find, of_kind

pytestmark = pytest.mark.deploy

PROD_OVERLAYS = ("prod", "prod-keda", "prod-dr")


@pytest.mark.parametrize("overlay", PROD_OVERLAYS)
def test_each_service_has_its_own_broker_user_made_from_its_own_url(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    objs = rendered[overlay]
    assert {u["metadata"]["name"] for u in of_kind(objs, "User")} == set(SERVICES)
    for service in SERVICES:
        other = next(s for s in SERVICES if s != service)
        user = find(objs, "User", service)
        assert user["spec"]["rabbitmqClusterReference"] == {"name": "shop-mq"}
        assert "tags" not in user["spec"], "messaging only: no management access"
        credentials = user["spec"]["importCredentialsSecret"]["name"]
        external = find(objs, "ExternalSecret", credentials)
        assert set(external["spec"]["target"]["template"]["data"]) == {"username", "password"}
        [source] = external["spec"]["data"]
        assert source["remoteRef"]["property"] == f"{service.upper()}_AMQP_URL"
        assert source["remoteRef"]["key"] == f"shop/prod/{service}"

        permission = find(objs, "Permission", service)
        topic = find(objs, "TopicPermission", service)
        for rights in (permission, topic):
            assert rights["spec"]["userReference"] == {"name": service}
            assert rights["spec"]["vhost"] == "/"
            assert rights["spec"]["rabbitmqClusterReference"] == {"name": "shop-mq"}
        assert topic["spec"]["permissions"] == {
            "exchange": "shop.events",
            "write": f"^{service}\\.",
            "read": f"^{other}\\.",
        }
        for verb in ("configure", "write", "read"):
            regex = permission["spec"]["permissions"][verb]
            assert regex.startswith("^("), f"{verb}: anchored"
            assert regex.endswith(")$"), f"{verb}: anchored"
            assert other not in regex, f"{service} may {verb} nothing of {other}'s"


def test_dev_keeps_its_single_broker_user(rendered: dict[str, list[Manifest]]) -> None:
    assert not of_kind(rendered["dev"], "User")
    assert not of_kind(rendered["dev"], "Permission")


def test_broker_user_schemas_reject_typos(rendered: dict[str, list[Manifest]]) -> None:
    user = copy.deepcopy(find(rendered["prod"], "User", "catalog"))
    user["spec"]["importCredentialSecret"] = user["spec"].pop("importCredentialsSecret")
    assert any("importCredentialSecret" in e for e in schema_errors(user))

    permission = copy.deepcopy(find(rendered["prod"], "Permission", "catalog"))
    del permission["spec"]["vhost"]
    assert any("vhost" in e for e in schema_errors(permission))

    topic = copy.deepcopy(find(rendered["prod"], "TopicPermission", "orders"))
    del topic["spec"]["permissions"]["exchange"]
    assert any("exchange" in e for e in schema_errors(topic))

"""docker-compose.yml: Compose-spec schema (vendored), .env interpolation, start-up order."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.compose_interpolation import (
    InterpolationError,
    read_env_file,
    referenced_variables,
)
from tests.deploy.dockerfiles import parse_dockerfile
from tests.deploy.manifests import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    REPO_ROOT,
    SCHEMAS_DIR,
    SERVICES,
    image_build,
    resolved_compose,
    venv_tool,
)

pytestmark = pytest.mark.deploy

COMPOSE_SCHEMA = SCHEMAS_DIR / "compose" / "compose-spec.json"

# Variables that carry credentials: compose must refuse to start without them.
SECRET_VARIABLES = (
    "POSTGRES_PASSWORD",
    "CATALOG_DB_PASSWORD",
    "ORDERS_DB_PASSWORD",
    "RABBITMQ_PASSWORD",
    "JWT_SECRET",
    "GRAFANA_ADMIN_PASSWORD",
)
LONG_RUNNING = tuple(f"{s}-{p}" for s in SERVICES for p in ("api", "worker"))


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_file_validates_with_check_jsonschema_offline() -> None:
    result = subprocess.run(
        [venv_tool("check-jsonschema"), "--schemafile", str(COMPOSE_SCHEMA), str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_interpolated_compose_model_validates() -> None:
    assert schema_errors(resolved_compose()) == []


def test_schema_rejects_an_invalid_service() -> None:
    broken = resolved_compose()
    broken["services"]["catalog-api"]["restart_policy"] = "always"  # not a service key
    broken["services"]["catalog-worker"]["depends_on"]["rabbitmq"]["condition"] = "service_ready"
    assert len(schema_errors(broken)) >= 2


def test_env_example_defines_every_required_variable_and_nothing_stale() -> None:
    text = COMPOSE_FILE.read_text()
    referenced = referenced_variables(text)
    defined = set(read_env_file(ENV_EXAMPLE))
    resolved = yaml.safe_dump(resolved_compose())
    assert "${" not in resolved
    stale = defined - referenced
    assert not stale, f".env.example defines variables compose never uses: {sorted(stale)}"


@pytest.mark.parametrize("variable", SECRET_VARIABLES)
def test_compose_fails_fast_without_a_secret(variable: str) -> None:
    env = read_env_file(ENV_EXAMPLE)
    del env[variable]
    with pytest.raises(InterpolationError, match=variable):
        resolved_compose(env)


def test_real_env_file_is_git_ignored() -> None:
    ignored = {line.strip() for line in (REPO_ROOT / ".gitignore").read_text().splitlines()}
    assert ".env" in ignored


def test_env_example_values_are_placeholders() -> None:
    for name, value in read_env_file(ENV_EXAMPLE).items():
        if name in SECRET_VARIABLES:
            assert value.startswith("change-me"), f"{name} must be an obvious placeholder"


def test_stack_has_infrastructure_one_shots_and_four_processes() -> None:
    # What `docker compose up` starts: the services in no profile (the observability profile
    # is checked in test_compose_observability.py).
    services = {
        name: service
        for name, service in resolved_compose()["services"].items()
        if not service.get("profiles")
    }
    expected = {"postgres", "rabbitmq"} | set(LONG_RUNNING)
    expected |= {f"{s}-{step}" for s in SERVICES for step in ("provision", "migrate")}
    assert set(services) == expected
    assert "15672" in " ".join(services["rabbitmq"]["ports"]), "management UI is published"
    assert services["rabbitmq"]["image"].endswith("-management")


def test_every_long_running_container_has_a_health_check() -> None:
    services = resolved_compose()["services"]
    for name in ("postgres", "rabbitmq", *LONG_RUNNING):
        assert "healthcheck" in services[name], name
    for service in SERVICES:
        port = {"catalog": (8001, 9101), "orders": (8002, 9102)}[service]
        api = " ".join(services[f"{service}-api"]["healthcheck"]["test"])
        worker = " ".join(services[f"{service}-worker"]["healthcheck"]["test"])
        assert f"127.0.0.1:{port[0]}/readyz" in api
        assert f"127.0.0.1:{port[1]}/readyz" in worker


def _condition(services: dict[str, Any], service: str, dependency: str) -> str | None:
    depends = services[service].get("depends_on", {})
    if dependency not in depends:
        return None
    condition: str = depends[dependency]["condition"]
    return condition


@pytest.mark.parametrize("service", SERVICES)
def test_start_up_order_is_provision_migrate_then_processes(service: str) -> None:
    services = resolved_compose()["services"]
    assert _condition(services, f"{service}-provision", "postgres") == "service_healthy"
    assert (
        _condition(services, f"{service}-migrate", f"{service}-provision")
        == "service_completed_successfully"
    )
    for process in ("api", "worker"):
        name = f"{service}-{process}"
        assert _condition(services, name, f"{service}-migrate") == "service_completed_successfully"
    # Only the worker talks to the broker: an API starts (and is ready) without it.
    assert _condition(services, f"{service}-worker", "rabbitmq") == "service_healthy"
    assert _condition(services, f"{service}-api", "rabbitmq") is None
    for step in ("provision", "migrate"):
        assert services[f"{service}-{step}"]["restart"] == "no"


@pytest.mark.parametrize("service", SERVICES)
def test_processes_use_one_image_with_their_entrypoints(service: str) -> None:
    services = resolved_compose()["services"]
    images = {
        services[f"{service}-{p}"]["image"] for p in ("provision", "migrate", "api", "worker")
    }
    assert images == {f"shop-{service}:dev"}
    for process in ("api", "worker", "migrate"):
        assert services[f"{service}-{process}"]["command"] == [f"{service}-{process}"]
    assert services[f"{service}-provision"]["command"] == ["shop-provision", service]
    build = services[f"{service}-api"]["build"]
    assert build["dockerfile"] == DOCKERFILE.relative_to(REPO_ROOT).as_posix()
    # The build argument and the target name the same service (the stage exists).
    assert {"target": build["target"], "args": build["args"]} == image_build(service)
    assert build["target"] in {stage.name for stage in parse_dockerfile(DOCKERFILE.read_text())}


@pytest.mark.parametrize("service", SERVICES)
def test_application_settings_follow_the_runtime_contract(service: str) -> None:
    services = resolved_compose()["services"]
    prefix = service.upper()
    env = services[f"{service}-api"]["environment"]
    assert env[f"{prefix}_HOST"] == "0.0.0.0"
    # Metrics on their own port, which is not published (only the API port is).
    metrics_port = {"catalog": "9201", "orders": "9202"}[service]
    assert env[f"{prefix}_METRICS_PORT"] == metrics_port
    published = " ".join(str(p) for p in services[f"{service}-api"].get("ports", []))
    assert f":{metrics_port}" not in published
    assert env[f"{prefix}_DATABASE_URL"].startswith(f"postgresql+asyncpg://{service}_svc:")
    assert env[f"{prefix}_DATABASE_URL"].endswith("@postgres:5432/shop")
    assert env[f"{prefix}_AMQP_URL"].endswith("@rabbitmq:5672/")
    assert len(env[f"{prefix}_JWT_SECRET"]) >= 32
    provision = services[f"{service}-provision"]["environment"]
    assert provision["PROVISION_DATABASE_URL"].startswith("postgresql://postgres:")
    assert f"{prefix}_DB_PASSWORD" in provision
    if service == "orders":
        assert env["ORDERS_CATALOG_URL"] == "http://catalog-api:8001"


def test_superuser_password_reaches_only_postgres_and_provisioning() -> None:
    password = read_env_file(ENV_EXAMPLE)["POSTGRES_PASSWORD"]
    services = resolved_compose()["services"]
    holders = {name for name, svc in services.items() if password in json.dumps(svc)}
    assert holders == {"postgres", "catalog-provision", "orders-provision"}


def test_service_containers_are_hardened() -> None:
    services = resolved_compose()["services"]
    for service in SERVICES:
        for step in ("provision", "migrate", "api", "worker"):
            container = services[f"{service}-{step}"]
            assert container["read_only"] is True
            assert container["cap_drop"] == ["ALL"]
            assert "no-new-privileges:true" in container["security_opt"]
            assert "user" not in container, "the image's non-root user must not be overridden"


def test_no_latest_images_and_ports_bound_to_loopback() -> None:
    services = resolved_compose()["services"]
    for name, service in services.items():
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: untagged image means :latest"
        assert not image.endswith(":latest"), name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"

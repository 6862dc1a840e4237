"""docker-compose.yml's `observability` profile: Prometheus with the production rules and the
four processes as targets, Grafana with the Kubernetes dashboards' own files, Jaeger for OTLP."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import REPO_ROOT, SERVICES, resolved_compose
from tests.observability.rules import DASHBOARDS_DIR, RULES_FILE
from tests.observability.test_rules import run_promtool

pytestmark = pytest.mark.deploy

PROFILE = "observability"
OBSERVABILITY = ("prometheus", "grafana", "jaeger")


def _services() -> dict[str, Any]:
    services: dict[str, Any] = resolved_compose()["services"]
    return services


def _mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (relative to the repository)."""
    mounts = {}
    for volume in _services()[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = REPO_ROOT / source
    return mounts


def _host_path(service: str, container_path: str) -> Path:
    for target, source in _mounts(service).items():
        if container_path == target or container_path.startswith(target + "/"):
            return source / container_path.removeprefix(target).lstrip("/")
    raise AssertionError(f"{service}: nothing mounted at {container_path}")


def test_observability_runs_only_when_asked_for() -> None:
    services = _services()
    for name in OBSERVABILITY:
        assert services[name]["profiles"] == [PROFILE], name
    profiled = {name for name, service in services.items() if service.get("profiles")}
    assert profiled == set(OBSERVABILITY)


def test_every_mounted_file_exists() -> None:
    for name in OBSERVABILITY:
        for target, source in _mounts(name).items():
            assert source.exists(), f"{name}: {source} (for {target}) does not exist"


def test_prometheus_loads_the_production_rules() -> None:
    config = yaml.safe_load(_host_path("prometheus", "/etc/prometheus/prometheus.yml").read_text())
    patterns = config["rule_files"]
    loaded = {
        path.resolve()
        for pattern in patterns
        for path in _host_path("prometheus", str(Path(pattern).parent)).glob(Path(pattern).name)
    }
    assert loaded == {RULES_FILE.resolve()}


def _metrics_port(service: str, process: str) -> int:
    env = _services()[f"{service}-{process}"]["environment"]
    prefix = service.upper()
    if process == "worker":
        return int(env[f"{prefix}_WORKER_PORT"])
    return int(env[f"{prefix}_METRICS_PORT"])


def test_prometheus_scrapes_the_four_processes_on_their_metrics_ports() -> None:
    config = yaml.safe_load(_host_path("prometheus", "/etc/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = {f"{s}-{p}" for s in SERVICES for p in ("api", "worker")}
    assert set(jobs) == expected
    for service in SERVICES:
        for process in ("api", "worker"):
            (static,) = jobs[f"{service}-{process}"]["static_configs"]
            port = _metrics_port(service, process)
            assert static["targets"] == [f"{service}-{process}:{port}"]
            # The labels the PodMonitors give the same targets in Kubernetes.
            assert static["labels"] == {"service": service, "component": process}


def test_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    """`promtool check config` on the config as the container sees it: its rule files
    resolved through the compose mounts."""
    config_path = _host_path("prometheus", "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for pattern in config["rule_files"]:
        for path in _host_path("prometheus", str(Path(pattern).parent)).glob(Path(pattern).name):
            shutil.copy(path, rules_dir / path.name)
    config["rule_files"] = [f"{rules_dir}/*.yml"]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    result = run_promtool("check", "config", str(checked))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"SUCCESS: \d+ rules found", result.stdout + result.stderr)


def test_grafana_provisions_the_kubernetes_dashboards_and_prometheus() -> None:
    provider = yaml.safe_load(
        _host_path("grafana", "/etc/grafana/provisioning/dashboards/shop.yml").read_text()
    )
    (shop,) = provider["providers"]
    dashboards = _host_path("grafana", shop["options"]["path"])
    assert dashboards.resolve() == DASHBOARDS_DIR.resolve()
    assert sorted(p.name for p in dashboards.glob("*.json")) == [
        "shop-catalog.json",
        "shop-orders.json",
        "shop-overview.json",
    ]
    home = _services()["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert _host_path("grafana", home).is_file()
    sources = yaml.safe_load(
        _host_path("grafana", "/etc/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    (prometheus,) = sources["datasources"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["isDefault"] is True
    assert prometheus["url"] == "http://prometheus:9090"


def test_jaeger_takes_otlp_on_the_standard_ports() -> None:
    jaeger = _services()["jaeger"]
    published = {port.rsplit(":", 1)[1] for port in jaeger["ports"]}
    assert {"4317", "4318", "16686"} <= published
    assert "--set=receivers.otlp.protocols.grpc.endpoint=0.0.0.0:4317" in jaeger["command"]
    assert "--set=receivers.otlp.protocols.http.endpoint=0.0.0.0:4318" in jaeger["command"]


def test_observability_containers_are_hardened() -> None:
    for name in OBSERVABILITY:
        service = _services()[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name

"""Images: hadolint, the multi-stage uv build, a non-root runtime, and the build context."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.dockerfiles import DockerIgnore, Stage, build_context, parse_dockerfile
from tests.deploy.manifests import DOCKERFILES, FIXTURES_DIR, REPO_ROOT, SERVICES, venv_tool

pytestmark = pytest.mark.deploy

PYTHON_BASE = re.compile(r"python:3\.11\.\d+-slim(-\w+)?")
UV_IMAGE = "ghcr.io/astral-sh/uv:0.13.8"
# Every workspace member (uv needs all their pyproject files to check the lock) and the
# one that is dev-only (`make up`, `make token`): its code never reaches the context.
DEV_ONLY_MEMBER = "libs/devtools"
WORKSPACE_MEMBERS = ("libs/common", DEV_ONLY_MEMBER, "services/catalog", "services/orders")


def hadolint(path: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode not in (0, 1):
        pytest.fail(f"hadolint did not run: {result.stderr}")
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return findings


def _copy_sources(stage: Stage) -> list[str]:
    """The context paths a stage's COPY instructions read (not those from other stages)."""
    sources = []
    for arguments in stage.arguments("COPY"):
        if arguments.startswith("--from="):
            continue
        *paths, _destination = arguments.split()
        sources += paths
    return sources


def _uv_sync_options(run: str) -> list[str]:
    """The options of the `uv sync` in a RUN instruction."""
    words = shlex.split(run)
    start = next(i for i in range(len(words) - 1) if words[i : i + 2] == ["uv", "sync"])
    return words[start + 2 :]


@pytest.fixture(scope="module")
def stages() -> dict[str, list[Stage]]:
    return {service: parse_dockerfile(path.read_text()) for service, path in DOCKERFILES.items()}


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint_passes(service: str) -> None:
    findings = hadolint(DOCKERFILES[service])
    assert findings == [], "\n".join(f"{f['line']} {f['code']}: {f['message']}" for f in findings)


def test_hadolint_flags_a_known_bad_dockerfile() -> None:
    codes = {str(f["code"]) for f in hadolint(FIXTURES_DIR / "insecure.Dockerfile")}
    assert {"DL3007", "DL3008", "DL3025"} <= codes


@pytest.mark.parametrize("service", SERVICES)
def test_builder_stage_uses_uv_locked_sync(service: str, stages: dict[str, list[Stage]]) -> None:
    by_name = {stage.name: stage for stage in stages[service]}
    assert by_name["uv"].base == UV_IMAGE
    builder = by_name["builder"]
    assert PYTHON_BASE.fullmatch(builder.base), builder.base
    assert any(c.startswith("--from=uv /uv ") for c in builder.arguments("COPY"))
    env = " ".join(builder.arguments("ENV"))
    for setting in ("UV_PYTHON_DOWNLOADS=never", "UV_COMPILE_BYTECODE=1", "UV_LINK_MODE=copy"):
        assert setting in env
    syncs = [run for run in builder.arguments("RUN") if "uv sync" in run]
    assert syncs, "the builder never runs uv sync"
    for run in syncs:
        assert "--locked" in run
        assert "--no-dev" in run
        assert f"--package shop-{service}" in run
    # The workspace pyproject files of *all* members are needed for --locked.
    copies = " ".join(builder.arguments("COPY"))
    for member in WORKSPACE_MEMBERS:
        assert f"{member}/pyproject.toml" in copies
    # The dev-only member: its metadata for the lock check, never its code.
    for source in _copy_sources(builder):
        assert (
            not source.startswith(DEV_ONLY_MEMBER) or source == f"{DEV_ONLY_MEMBER}/pyproject.toml"
        )
    other = next(s for s in SERVICES if s != service)
    assert f"services/{other}/src" not in copies
    assert not re.search(rf"(^| )services/{other}( |$)", copies), f"{other}'s code copied"


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_stage_is_slim_non_root_and_has_no_build_tools(
    service: str, stages: dict[str, list[Stage]]
) -> None:
    runtime = stages[service][-1]
    assert runtime.name == "runtime"
    builder = next(s for s in stages[service] if s.name == "builder")
    # Same interpreter as the builder, so the venv's python symlink stays valid.
    assert runtime.base == builder.base
    assert not any("--from=uv" in c for c in runtime.arguments("COPY")), "uv in the final image"
    for run in runtime.arguments("RUN"):
        assert not re.search(r"apt-get|apk |pip |uv |gcc|build-essential|make ", run), run
    assert "--from=builder /app /app" in runtime.arguments("COPY")
    users = runtime.arguments("USER")
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "run as a fixed numeric uid (Kubernetes can then check runAsNonRoot)"
    assert int(uid) >= 10000, "run as a high, non-root uid"
    env = " ".join(runtime.arguments("ENV"))
    assert "PATH=/app/.venv/bin:$PATH" in env
    assert f"{service.upper()}_HOST=0.0.0.0" in env
    assert runtime.arguments("WORKDIR")[-1] == f"/app/services/{service}"
    assert json.loads(runtime.arguments("CMD")[-1]) == [f"{service}-api"]


def test_dockerignore_sends_only_what_the_images_need() -> None:
    ignore = DockerIgnore.parse((REPO_ROOT / ".dockerignore").read_text())
    for needed in (
        "pyproject.toml",
        "uv.lock",
        "libs/common/pyproject.toml",
        "libs/common/src/shop_common/__init__.py",
        "services/catalog/pyproject.toml",
        "services/catalog/src/shop_catalog/__init__.py",
        "services/orders/src/shop_orders/__init__.py",
        "services/catalog/src/shop_catalog/migrations/env.py",
        f"{DEV_ONLY_MEMBER}/pyproject.toml",
    ):
        assert not ignore.excludes(needed), needed
    for private in (
        ".env",
        ".venv/bin/python",
        ".tools/bin/uv",
        ".run/catalog-api.log",
        ".git/config",
        "tests/deploy/conftest.py",
        "services/catalog/tests/test_x.py",
        "k8s/base/kustomization.yaml",
        "docs/operations.md",
        "libs/common/src/shop_common/__pycache__/x.cpython-311.pyc",
        "docker-compose.yml",
        f"{DEV_ONLY_MEMBER}/src/shop_dev/__init__.py",
        f"{DEV_ONLY_MEMBER}/src/shop_dev/up.py",
        f"{DEV_ONLY_MEMBER}/tests/test_stack.py",
    ):
        assert ignore.excludes(private), private


def test_build_context_holds_nothing_of_the_dev_only_member_but_its_metadata() -> None:
    ignore = DockerIgnore.parse((REPO_ROOT / ".dockerignore").read_text())
    sent = {p for p in build_context(REPO_ROOT, ignore) if p.startswith(f"{DEV_ONLY_MEMBER}/")}
    assert sent == {f"{DEV_ONLY_MEMBER}/pyproject.toml"}


def _staged_context(tmp_path: Path) -> Path:
    ignore = DockerIgnore.parse((REPO_ROOT / ".dockerignore").read_text())
    for relative in build_context(REPO_ROOT, ignore):
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, target)
    return tmp_path


def test_build_context_holds_every_copied_path(tmp_path: Path) -> None:
    context = _staged_context(tmp_path)
    for service, dockerfile in DOCKERFILES.items():
        for stage in parse_dockerfile(dockerfile.read_text()):
            for arguments in stage.arguments("COPY"):
                if arguments.startswith("--from="):
                    continue
                *sources, _destination = arguments.split()
                for source in sources:
                    assert (context / source).exists(), f"{service}: COPY {source} not in context"


def _uv(context: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """uv, offline, run on a staged build context."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not available (run the suite with `uv run`)")
    return subprocess.run(
        [uv, *arguments, "--offline", "--directory", str(context)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )


def test_lock_is_consistent_inside_the_build_context(tmp_path: Path) -> None:
    """`uv sync --locked` in the image needs a lock matching the members sent in context."""
    result = _uv(_staged_context(tmp_path), "lock", "--check")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_image_installs_only_its_service_and_the_shared_library(
    service: str, stages: dict[str, list[Stage]], tmp_path: Path
) -> None:
    """What the builder's last `uv sync` installs, resolved from the lock in the context:
    of the workspace members, shop-common and this service; never shop-dev or the other."""
    builder = next(s for s in stages[service] if s.name == "builder")
    install = [run for run in builder.arguments("RUN") if "uv sync" in run][-1]
    options = _uv_sync_options(install)
    assert "--no-install-workspace" not in options, "the last sync must install the members"
    result = _uv(_staged_context(tmp_path), "export", *options, "--no-hashes")
    assert result.returncode == 0, result.stderr
    members = {
        line.removeprefix("-e ./") for line in result.stdout.splitlines() if line.startswith("-e ")
    }
    assert members == {"libs/common", f"services/{service}"}

"""Images: hadolint, the multi-stage uv build, a non-root runtime, and the build context.

Every image comes from one Dockerfile (manifests.DOCKERFILE): each service's, and the
operator's (`--target ops`, ADR 0014). The per-image checks read it as the build of that
image sees it (manifests.dockerfile_as_built): the stages its target needs, with `SERVICE`
substituted.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.deploy.dockerfiles import (
    DockerIgnore,
    Stage,
    build_context,
    parse_dockerfile,
    render_for_target,
)
from tests.deploy.environment import settings_class
from tests.deploy.manifests import (
    DOCKERFILE,
    FIXTURES_DIR,
    IMAGES,
    OPS_IMAGE,
    REPO_ROOT,
    SERVICES,
    dockerfile_as_built,
    image_build,
    venv_tool,
)

pytestmark = pytest.mark.deploy

PYTHON_BASE = re.compile(r"python:3\.11\.\d+-slim(-\w+)?")
UV_IMAGE = "ghcr.io/astral-sh/uv:0.13.8"
# Every workspace member (uv needs all their pyproject files to check the lock) and the
# one that is dev-only (`make up`, `make token`): its code never reaches the context.
DEV_ONLY_MEMBER = "libs/devtools"
OPS_MEMBER = "libs/ops"
WORKSPACE_MEMBERS = (
    "libs/common",
    DEV_ONLY_MEMBER,
    OPS_MEMBER,
    "services/catalog",
    "services/orders",
)


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


def _overlaps(source: str, directory: str) -> bool:
    """Whether copying `source` copies something of `directory` (or all of it)."""
    path = os.path.normpath(source)
    return (
        path in (".", directory)
        or path.startswith(f"{directory}/")
        or directory.startswith(f"{path}/")
    )


def _uv_sync_options(run: str) -> list[str]:
    """The options of the `uv sync` in a RUN instruction."""
    words = shlex.split(run)
    start = next(i for i in range(len(words) - 1) if words[i : i + 2] == ["uv", "sync"])
    return words[start + 2 :]


def _other(service: str) -> str:
    return next(s for s in SERVICES if s != service)


def _flattened(stages: list[Stage], name: str) -> Stage:
    """Stage `name` with the stages it is built FROM: its base image (not a stage) and every
    instruction from that image up, in order."""
    by_name = {stage.name: stage for stage in stages}
    chain = [by_name[name]]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return Stage(chain[0].base, name, [i for stage in chain for i in stage.instructions])


@pytest.fixture(scope="module")
def stages() -> dict[str, list[Stage]]:
    """Per image, the stages its build runs, build arguments substituted."""
    return {image: parse_dockerfile(dockerfile_as_built(image)) for image in IMAGES}


def test_hadolint_passes() -> None:
    findings = hadolint(DOCKERFILE)
    assert findings == [], "\n".join(f"{f['line']} {f['code']}: {f['message']}" for f in findings)


@pytest.mark.parametrize("image", IMAGES)
def test_hadolint_passes_as_built(image: str, tmp_path: Path) -> None:
    rendered = tmp_path / "Dockerfile"
    rendered.write_text(dockerfile_as_built(image))
    findings = hadolint(rendered)
    assert findings == [], "\n".join(f"{f['line']} {f['code']}: {f['message']}" for f in findings)


def test_hadolint_flags_a_known_bad_dockerfile() -> None:
    codes = {str(f["code"]) for f in hadolint(FIXTURES_DIR / "insecure.Dockerfile")}
    assert {"DL3007", "DL3008", "DL3025"} <= codes


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_builds_its_own_stages_with_the_build_argument_set(
    service: str, stages: dict[str, list[Stage]]
) -> None:
    names = [stage.name for stage in stages[service]]
    assert names == ["uv", "workspace", "builder", "runtime", "service", service], (
        "the target builds these, in order"
    )
    assert image_build(service) == {"target": service, "args": {"SERVICE": service}}
    for stage in stages[service]:
        for instruction in stage.instructions:
            # Left as written by the renderer only where the stage has no `ARG SERVICE`,
            # and Docker would then expand it to an empty string.
            assert not re.search(r"\$\{?SERVICE\b", instruction.arguments), (
                f"{stage.name}: {instruction.keyword} {instruction.arguments} uses SERVICE "
                "without declaring it (ARG SERVICE) in its stage"
            )


@pytest.mark.parametrize("service", SERVICES)
def test_builder_stage_uses_uv_locked_sync(service: str, stages: dict[str, list[Stage]]) -> None:
    by_name = {stage.name: stage for stage in stages[service]}
    assert by_name["uv"].base == UV_IMAGE
    builder = _flattened(stages[service], "builder")
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
    other = _other(service)
    assert f"services/{other}/src" not in copies
    assert not re.search(rf"(^| )services/{other}( |$)", copies), f"{other}'s code copied"
    # Of the other service, the dev-only member and the operator CLI, only the pyproject.toml
    # the lock check needs: no code, not even through a parent directory (`services`, `libs`).
    for source in _copy_sources(builder):
        for private in (f"services/{other}", DEV_ONLY_MEMBER, OPS_MEMBER):
            if _overlaps(source, private):
                assert source == f"{private}/pyproject.toml", f"COPY {source}: code of {private}"


def _check_runtime(image: Stage, builder: Stage) -> None:
    """A final image: the builder's interpreter, /app from that builder only, no build tools,
    a fixed high non-root uid, the venv on PATH."""
    # Same interpreter as the builder, so the venv's python symlink stays valid.
    assert image.base == builder.base
    assert not any("--from=uv" in c for c in image.arguments("COPY")), "uv in the final image"
    for run in image.arguments("RUN"):
        assert not re.search(r"apt-get|apk |pip |uv |gcc|build-essential|make ", run), run
    from_stages = [c for c in image.arguments("COPY") if c.startswith("--from=")]
    assert from_stages == [f"--from={builder.name} /app /app"]
    users = image.arguments("USER")
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "run as a fixed numeric uid (Kubernetes can then check runAsNonRoot)"
    assert int(uid) >= 10000, "run as a high, non-root uid"
    env = " ".join(image.arguments("ENV"))
    assert "PATH=/app/.venv/bin:$PATH" in env


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_stage_is_slim_non_root_and_has_no_build_tools(
    service: str, stages: dict[str, list[Stage]]
) -> None:
    # The image is the shared runtime stage, the service runtime, and this service's final
    # stage on top of them.
    final = stages[service][-1]
    assert final.name == service
    assert final.base == "service", "the service's stage is built on the service runtime"
    image = _flattened(stages[service], service)
    _check_runtime(image, _flattened(stages[service], "builder"))
    env = " ".join(image.arguments("ENV"))
    assert f"{service.upper()}_HOST=0.0.0.0" in env
    assert f"{_other(service).upper()}_" not in env, "the other service's settings"
    assert image.arguments("WORKDIR")[-1] == f"/app/services/{service}"
    assert json.loads(image.arguments("CMD")[-1]) == [f"{service}-api"]


def _port_settings(service: str, image_env: dict[str, str]) -> dict[str, int]:
    """Every port setting of the service's settings class (`port`, `*_port`), as the image
    sets it (its ENV) or else the class's default."""
    settings = settings_class(service)
    prefix = str(settings.model_config.get("env_prefix", ""))
    ports = {}
    for name, field in settings.model_fields.items():
        if name == "port" or name.endswith("_port"):
            variable = f"{prefix}{name}".upper()
            ports[variable] = int(image_env.get(variable, field.default))
    return ports


@pytest.mark.parametrize("service", SERVICES)
def test_image_exposes_every_port_its_processes_listen_on(
    service: str, stages: dict[str, list[Stage]]
) -> None:
    """One image runs the API (its port and its metrics port) and the worker (its port):
    EXPOSE lists each, as the settings class reads it in the image, and nothing else."""
    final = stages[service][-1]
    image_env = dict(
        word.split("=", 1) for arguments in final.arguments("ENV") for word in arguments.split()
    )
    ports = _port_settings(service, image_env)
    assert len(ports) == 3, f"expected port, worker_port and metrics_port: {sorted(ports)}"
    exposed = [int(p) for arguments in final.arguments("EXPOSE") for p in arguments.split()]
    assert sorted(exposed) == sorted(ports.values()), f"EXPOSE {exposed}, the settings: {ports}"
    # The ports the image states in ENV are the ones it exposes (and they are settings).
    stated = {k: v for k, v in image_env.items() if k.endswith("PORT")}
    assert stated == {k: str(v) for k, v in ports.items()}


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_checks_that_the_build_argument_matches_the_target(
    service: str, stages: dict[str, list[Stage]]
) -> None:
    """The default command exists, or the build fails saying which build-arg to pass."""
    final = stages[service][-1]
    guard = final.arguments("RUN")[0]
    assert f"test -x /app/.venv/bin/{service}-api" in guard
    assert f"--build-arg SERVICE={service}" in guard
    assert "exit 1" in guard


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
        f"{OPS_MEMBER}/pyproject.toml",
        # The ops target's (the service targets copy its pyproject.toml only: see above).
        f"{OPS_MEMBER}/src/shop_ops/cli.py",
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
        f"{OPS_MEMBER}/tests/test_timeline.py",
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


def test_build_context_holds_every_copied_path(
    stages: dict[str, list[Stage]], tmp_path: Path
) -> None:
    context = _staged_context(tmp_path)
    for image in IMAGES:
        for stage in stages[image]:
            for source in _copy_sources(stage):
                assert (context / source).exists(), f"{image}: COPY {source} not in context"


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


# ------------------------------------------------------------------ the ops image (ADR 0014)

OPS_MEMBERS = {"libs/common", "services/catalog", "services/orders", OPS_MEMBER}


def test_ops_image_builds_its_own_stages_without_a_build_argument(
    stages: dict[str, list[Stage]],
) -> None:
    names = [stage.name for stage in stages[OPS_IMAGE]]
    assert names == ["uv", "workspace", "runtime", "ops-builder", "ops"], (
        "the target builds these, in order (no service's builder or runtime)"
    )
    assert image_build(OPS_IMAGE) == {"target": "ops", "args": {}}
    for stage in stages[OPS_IMAGE]:
        for instruction in stage.instructions:
            assert "SERVICE" not in instruction.arguments, (
                f"{stage.name}: {instruction.keyword} {instruction.arguments}: the ops build "
                "passes no SERVICE"
            )


def test_ops_builder_installs_shop_ops_and_both_services_from_the_lock(
    stages: dict[str, list[Stage]], tmp_path: Path
) -> None:
    """What the ops builder's last `uv sync` installs, resolved from the lock in the context:
    shop-common, both services and shop-ops (never shop-dev), each one's code copied first."""
    builder = _flattened(stages[OPS_IMAGE], "ops-builder")
    assert PYTHON_BASE.fullmatch(builder.base), builder.base
    syncs = [n for n, i in enumerate(builder.instructions) if "uv sync" in i.arguments]
    assert syncs, "the ops builder never runs uv sync"
    for n in syncs:
        run = builder.instructions[n].arguments
        assert "--locked" in run
        assert "--no-dev" in run
        assert "--package shop-ops" in run
    options = _uv_sync_options(builder.instructions[syncs[-1]].arguments)
    assert "--no-install-workspace" not in options, "the last sync must install the members"
    context = _staged_context(tmp_path)
    result = _uv(context, "export", *options, "--no-hashes")
    assert result.returncode == 0, result.stderr
    members = {
        line.removeprefix("-e ./") for line in result.stdout.splitlines() if line.startswith("-e ")
    }
    assert members == OPS_MEMBERS
    assert "shop-ops" in _commands_installed(context, options)
    # uv installs a member from its code: each one's is copied before that sync, and of the
    # dev-only member nothing but the metadata.
    before = Stage(builder.base, builder.name, builder.instructions[: syncs[-1]])
    sources = _copy_sources(before)
    for member in sorted(members):
        assert any(
            _overlaps(source, member) and source != f"{member}/pyproject.toml" for source in sources
        ), f"{member} is installed but its code is not copied"
    for source in _copy_sources(builder):
        if _overlaps(source, DEV_ONLY_MEMBER):
            assert source == f"{DEV_ONLY_MEMBER}/pyproject.toml", f"COPY {source}: shop-dev code"


def test_ops_image_is_slim_non_root_and_starts_no_server(stages: dict[str, list[Stage]]) -> None:
    final = stages[OPS_IMAGE][-1]
    assert (final.name, final.base) == ("ops", "runtime"), "built on the shared runtime"
    image = _flattened(stages[OPS_IMAGE], "ops")
    _check_runtime(image, _flattened(stages[OPS_IMAGE], "ops-builder"))
    # The build runs the CLI once (it imports both services' tables and settings).
    assert any(run.startswith("shop-ops --help") for run in image.arguments("RUN"))
    # It waits for `kubectl exec`: no server, no port, no service settings of its own.
    assert json.loads(image.arguments("CMD")[-1]) == ["sleep", "infinity"]
    assert not image.arguments("EXPOSE")
    assert not image.arguments("ENTRYPOINT")
    env = " ".join(image.arguments("ENV"))
    assert not re.search(r"\b(CATALOG|ORDERS)_", env), "the Pod gives the services' settings"


def _commands_installed(context: Path, sync_options: list[str]) -> set[str]:
    """The console scripts an `uv sync` with these options puts in the venv's bin: those
    of the workspace members it installs (resolved from the lock in the context)."""
    result = _uv(context, "export", *sync_options, "--no-hashes")
    assert result.returncode == 0, result.stderr
    commands: set[str] = set()
    for line in result.stdout.splitlines():
        if line.startswith("-e "):
            member = context / line.removeprefix("-e ./") / "pyproject.toml"
            commands |= set(tomllib.loads(member.read_text())["project"].get("scripts", {}))
    return commands


@pytest.mark.parametrize(("target", "service"), [(t, s) for t in SERVICES for s in SERVICES])
def test_a_build_argument_that_does_not_match_the_target_fails_the_build(
    target: str, service: str, tmp_path: Path
) -> None:
    """`--target T --build-arg SERVICE=S`: the final stage's guard runs against the
    commands the builder installed for S (in a stand-in /app), and passes only if S is T."""
    stages = parse_dockerfile(
        render_for_target(DOCKERFILE.read_text(), target, {"SERVICE": service})
    )
    builder = next(s for s in stages if s.name == "builder")
    install = [run for run in builder.arguments("RUN") if "uv sync" in run][-1]
    commands = _commands_installed(_staged_context(tmp_path / "context"), _uv_sync_options(install))
    assert f"{service}-api" in commands
    venv_bin = tmp_path / "app" / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    for command in commands:
        (venv_bin / command).write_text("#!/bin/sh\n")
        (venv_bin / command).chmod(0o755)
    guard = stages[-1].arguments("RUN")[0].replace("/app/", f"{tmp_path}/app/")
    result = subprocess.run(
        ["sh", "-c", guard], capture_output=True, text=True, timeout=10, check=False
    )
    if target == service:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0, f"--target {target} built with SERVICE={service}"
        assert f"--build-arg SERVICE={target}" in result.stderr


@pytest.mark.parametrize("value", [None, "", "nope", *SERVICES])
def test_builder_refuses_a_missing_or_unknown_service(value: str | None, tmp_path: Path) -> None:
    """Without SERVICE, `COPY services/${SERVICE}` would copy both services: the builder's
    guard (run as Docker runs it: the build argument is in the RUN's environment) stops
    the build before that, saying which build-arg to pass."""
    builder = next(s for s in parse_dockerfile(DOCKERFILE.read_text()) if s.name == "builder")
    assert "SERVICE" in builder.arguments("ARG")
    keywords = [(i.keyword, i.arguments) for i in builder.instructions]
    guard_at = next(n for n, (k, a) in enumerate(keywords) if k == "RUN" and "test -n" in a)
    copy_at = keywords.index(("COPY", "services/${SERVICE} services/${SERVICE}"))
    sync_at = next(n for n, (k, a) in enumerate(keywords) if k == "RUN" and "uv sync" in a)
    assert guard_at < min(copy_at, sync_at), "the guard runs before anything uses SERVICE"
    env = {k: v for k, v in os.environ.items() if k != "SERVICE"}
    if value is not None:
        env["SERVICE"] = value
    result = subprocess.run(
        ["sh", "-c", keywords[guard_at][1]],
        cwd=_staged_context(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if value in SERVICES:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0, f"SERVICE={value!r} accepted"
        assert "--build-arg SERVICE=" in result.stderr

"""`make up`: provision, migrate, seed, start the four processes, then stream their logs.

Each step says what it does and what it waits for. After the banner the processes' JSON logs
(still written to `<run dir>/<process>.log`) are shown as one readable stream until Ctrl-C
or `make down`, which stop everything. `make up DETACH=1` returns once the stack is ready
and leaves it running; `make down` stops it by the pids recorded in `<run dir>/stack.json`.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from shop_common.db.provision import admin_dsn
from shop_dev.console import LogFollower, Renderer, colour_wanted, log_files, write_stdout
from shop_dev.errors import DevStackError
from shop_dev.infrastructure import (
    check_reachable,
    check_service_login,
    declare_topologies,
    provision_all,
    without_password,
)
from shop_dev.runstate import RecordedProcess, RunState
from shop_dev.stack import Stack
from shop_dev.supervisor import Supervisor, console_script

READY_TIMEOUT_SECONDS = 60.0
STEPS = 6  # 1 install (the Makefile's), 2 provision, 3 migrate, 4 seed, 5 start, 6 ready
TAIL_LINES = 15

Say = Callable[[str], None]


class _Stopping:
    """Set by SIGINT (Ctrl-C) or SIGTERM (`make down`); every wait checks it."""

    def __init__(self) -> None:
        self.requested = False
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, _signum: int, _frame: object) -> None:
        self.requested = True

    def __call__(self) -> bool:
        return self.requested

    def exit_if_requested(self) -> None:
        """Between steps: nothing runs yet, so stopping is just leaving."""
        if self.requested:
            raise SystemExit(130)


def up(run_dir: Path, *, detach: bool, say: Say) -> None:
    started = time.monotonic()
    state = RunState.load(run_dir)
    if state is not None:
        if alive := state.alive():
            names = ", ".join(f"{p.name} (pid {p.pid})" for p in alive)
            raise DevStackError(
                f"a stack is already running, started {state.started_at}: {names}.\n"
                "  `make logs` follows it; `make down` stops it."
            )
        state.clear()  # left by a stack that is gone (killed, or the machine restarted)
    stack = Stack.from_environment()
    tokens = stack.dev_tokens()  # before anything starts: a token problem is a setup problem
    _check_ports_free(stack)
    stopping = _Stopping()

    admin = admin_dsn()
    brokers = ", ".join(without_password(url) for url in stack.amqp_urls())
    _step(say, 2, "provision", f"PostgreSQL at {without_password(admin)}, RabbitMQ at {brokers}")
    t = time.monotonic()
    asyncio.run(check_reachable(admin, stack.amqp_urls()))
    databases = [service.database() for service in stack.services]
    asyncio.run(provision_all(admin, databases))
    for service in stack.services:
        asyncio.run(
            check_service_login(service.settings.database_url, f"{service.env_prefix}DATABASE_URL")
        )
    asyncio.run(declare_topologies(stack))
    placed = ", ".join(f"{d.role} -> {d.database}.{d.schema}" for d in databases)
    say(f"    in place: {placed}, and both services' queues ({time.monotonic() - t:.1f}s)")
    stopping.exit_if_requested()

    _step(say, 3, "migrate", "Alembic, each service as its own role, both at once")
    t = time.monotonic()
    _run_steps([f"{s.name}-migrate" for s in stack.services], stopping)
    say(f"    migrations at head ({time.monotonic() - t:.1f}s)")

    _step(say, 4, "seed", "a small demo catalog, if the catalog is empty")
    t = time.monotonic()
    (seeded,) = _run_steps(["catalog-seed"], stopping)
    if "added 0 " in seeded:
        seeded = "the catalog has products already: nothing added"
    say(f"    {seeded.removeprefix('catalog-seed: ') or 'done'} ({time.monotonic() - t:.1f}s)")
    stopping.exit_if_requested()

    _run(stack, tokens, run_dir, detach=detach, stopping=stopping, say=say, started=started)


def _run(
    stack: Stack,
    tokens: Mapping[str, str],
    run_dir: Path,
    *,
    detach: bool,
    stopping: _Stopping,
    say: Say,
    started: float,
) -> None:
    supervisor = Supervisor(run_dir)
    state = RunState(
        run_dir=run_dir,
        supervisor=None if detach else RecordedProcess("make up", os.getpid(), "shop-dev"),
    )
    workers, apis = stack.workers(), stack.apis()
    _step(
        say,
        5,
        "start",
        f"{' and '.join(p.name for p in workers)}, then "
        f"{' and '.join(p.name for p in apis)}; JSON logs in {run_dir}/<process>.log",
    )
    leave_running = streaming = False
    follower = LogFollower(
        write_stdout,
        Renderer(colour=colour_wanted(sys.stdout)),
        discover=lambda: {p.name: supervisor.log_path(p) for p in [*workers, *apis]},
    )
    try:
        for number, group in enumerate((workers, apis)):
            for process in group:
                pid = supervisor.start(process)
                state.processes.append(RecordedProcess(process.name, pid, process.name))
            state.save()
            if number == 0:
                urls = ", ".join(p.ready_url for p in [*workers, *apis])
                _step(say, 6, "ready", f"waiting for 200 from {urls}")
            supervisor.wait_ready(group, timeout=READY_TIMEOUT_SECONDS, stopping=stopping, say=say)
        if stopping():
            return
        tokens_file = run_dir / "tokens.sh"
        tokens_file.touch(mode=0o600)
        tokens_file.write_text("".join(f"export {k}={v}\n" for k, v in tokens.items()))
        took = time.monotonic() - started
        write_stdout(banner(stack, tokens, run_dir, detach=detach) + "\n")
        if detach:
            say(f"ready in {took:.1f}s; left running: `make logs` follows it, `make down` stops it")
            supervisor.detach()
            leave_running = True
            return
        say(f"ready in {took:.1f}s. Ctrl-C (or `make down` in another shell) stops everything.")
        follower.start_at_end()
        streaming = True
        _stream(supervisor, follower, stopping, say)
    finally:
        if not leave_running:
            say("stopping the processes")
            supervisor.stop_all()
            if streaming:
                follower.poll()  # their last words
            state.clear()
            say("stopped all processes")


def _stream(supervisor: Supervisor, follower: LogFollower, stopping: _Stopping, say: Say) -> None:
    while not stopping():
        if exited := supervisor.first_exited():
            follower.poll()
            process, code = exited
            say(supervisor.exit_report(process, code, "exited") + "\n  Stopping the rest.")
            raise SystemExit(1)
        if not follower.poll():
            time.sleep(0.2)
    follower.poll()


def logs(run_dir: Path, *, lines: int, follow: bool, say: Say) -> None:
    """`make logs`: the last `lines` of every process's log, merged, then follow them."""
    if not log_files(run_dir):
        raise DevStackError(f"no logs in {run_dir}/ yet: `make up` writes them there")
    state = RunState.load(run_dir)
    if state is None or not state.alive():
        say("no stack is running (`make up` starts one); these are the last lines it logged")
    stopping = _Stopping()
    renderer = Renderer(colour=colour_wanted(sys.stdout))
    follower = LogFollower(write_stdout, renderer, discover=lambda: log_files(run_dir))
    follower.backlog(lines)
    if follow:
        follower.follow(stopping)


def banner(stack: Stack, tokens: Mapping[str, str], log_dir: Path, *, detach: bool = False) -> str:
    catalog, orders = stack.catalog, stack.orders
    exports = "\n".join(f"  export {name}={token}" for name, token in tokens.items())
    logs = "`make logs` follows them" if detach else "shown below, merged; `make logs` later"
    return f"""
  Catalog API   {catalog.api_url}/v1/products    docs: {catalog.api_url}/docs
  Orders API    {orders.api_url}/v1/orders      docs: {orders.api_url}/docs
  Metrics       {catalog.metrics_url}/metrics (catalog API), {catalog.worker_url}/metrics (worker)
                {orders.metrics_url}/metrics (orders API), {orders.worker_url}/metrics (worker)
  Logs          {log_dir}/<process>.log (JSON; {logs})

  Tokens for another shell (or `. {log_dir}/tokens.sh`):
{exports}
"""


def _step(say: Say, number: int, name: str, what: str) -> None:
    say(f"{number}/{STEPS} {name}: {what}")


def _run_steps(scripts: list[str], stopping: _Stopping) -> list[str]:
    """Run one-shot commands side by side; their output, or `DevStackError` with its end."""
    running = [
        (
            script,
            subprocess.Popen(  # noqa: S603
                [console_script(script)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            ),
        )
        for script in scripts
    ]
    outputs = []
    for script, popen in running:
        output, _ = popen.communicate()
        text = output.decode(errors="replace").strip()
        stopping.exit_if_requested()
        if popen.returncode != 0:
            tail = "\n".join("    " + line for line in text.splitlines()[-TAIL_LINES:])
            raise DevStackError(f"`{script}` failed with exit code {popen.returncode}:\n{tail}")
        outputs.append(text)
    return outputs


def _check_ports_free(stack: Stack) -> None:
    """A port taken by something else is the most common `make up` failure: say which."""
    for service in stack.services:
        settings = service.settings
        for variable, port in (
            ("PORT", settings.port),
            ("WORKER_PORT", settings.worker_port),
            ("METRICS_PORT", settings.metrics_port),
        ):
            if port and not _can_bind(settings.host, port):
                raise DevStackError(
                    f"port {port} on {settings.host} ({service.env_prefix}{variable}) is in use "
                    "by another process: a stack started elsewhere (`make down` stops one "
                    "`make up` recorded), a `make bench` run, or something else.\n"
                    f"  Stop it, or choose another port: `make up {service.env_prefix}{variable}="
                    f"{port + 10000}`."
                )


def _can_bind(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise DevStackError(f"cannot listen on {host}:{port}: {exc}") from exc
    return True

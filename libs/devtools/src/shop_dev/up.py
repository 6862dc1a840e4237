"""`shop-dev`: the local stack behind `make up` (provision, migrate, seed, run, stop on Ctrl-C)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from shop_common.db.provision import admin_dsn
from shop_dev.infrastructure import check_reachable, provision_all
from shop_dev.stack import DevStackError, Stack
from shop_dev.supervisor import Supervisor, console_script

LOG_DIR = Path(".run")
READY_TIMEOUT_SECONDS = 60.0


def main() -> None:
    try:
        _up()
    except DevStackError as exc:
        print(f"[make up] ERROR: {exc}", file=sys.stderr, flush=True)  # noqa: T201
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C before the processes start (during migrations, say)
        sys.exit(130)


def _up() -> None:
    stack = Stack.from_environment()
    tokens = stack.dev_tokens()  # before anything starts: a token problem is a setup problem
    admin = admin_dsn()
    asyncio.run(check_reachable(admin, stack.amqp_urls()))
    asyncio.run(provision_all(admin, [service.database() for service in stack.services]))
    for service in stack.services:
        _run_step(f"{service.name}-migrate")
    _say("roles, schemas and migrations are in place")
    _run_step("catalog-seed")
    _run(stack, tokens)


def _run(stack: Stack, tokens: Mapping[str, str]) -> None:
    supervisor = Supervisor(LOG_DIR)
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        # Workers first: they declare the RabbitMQ topology (queues, bindings) on start-up,
        # so events written by the APIs are routable from the first request.
        for group in (stack.workers(), stack.apis()):
            for process in group:
                supervisor.start(process)
            supervisor.wait_ready(group, timeout=READY_TIMEOUT_SECONDS, stopping=lambda: stopping)
        if not stopping:
            _say("ready. Ctrl-C stops everything.")
            print(banner(stack, tokens, LOG_DIR), flush=True)  # noqa: T201
        while not stopping:
            if exited := supervisor.first_exited():
                process, code = exited
                _say(f"{process.name} exited ({code}); stopping the rest")
                break
            time.sleep(0.5)
    finally:
        supervisor.stop_all()
        _say("stopped all processes")


def banner(stack: Stack, tokens: Mapping[str, str], log_dir: Path) -> str:
    catalog, orders = stack.catalog, stack.orders
    exports = "\n".join(f"  export {name}={token}" for name, token in tokens.items())
    return f"""
  Catalog API   {catalog.api_url}/v1/products    docs: {catalog.api_url}/docs
  Orders API    {orders.api_url}/v1/orders      docs: {orders.api_url}/docs
  Workers       {catalog.worker_url}/metrics (catalog)
                {orders.worker_url}/metrics (orders)
  Logs          {log_dir}/<process>.log

{exports}
"""


def _run_step(script: str) -> None:
    result = subprocess.run([console_script(script)], check=False)  # noqa: S603
    if result.returncode != 0:
        raise DevStackError(f"`{script}` failed with exit code {result.returncode}")


def _say(message: str) -> None:
    print(f"[make up] {message}", flush=True)  # noqa: T201

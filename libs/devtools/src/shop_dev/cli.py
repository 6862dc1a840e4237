"""`shop-dev up|down|logs|reset`: what `make up`, `make down`, `make logs` and `make reset` run.

Every failure it can explain is a `DevStackError`, printed as one message that says what to
do, never a traceback. The run directory (logs, pids, tokens) is `.run/` unless
`SHOP_DEV_RUN_DIR` says otherwise (tests use their own, so they never touch a real stack).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

from shop_dev.console import write_stdout
from shop_dev.errors import DevStackError
from shop_dev.runstate import RunState, stop_recorded

# `make down` only reads pids: the services' settings and drivers load only for the others.

RUN_DIR_VARIABLE = "SHOP_DEV_RUN_DIR"


def run_dir() -> Path:
    return Path(os.environ.get(RUN_DIR_VARIABLE) or ".run")


def say(command: str, message: str) -> None:
    write_stdout(f"[make {command}] {message}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shop-dev", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    start = commands.add_parser("up", help="provision, migrate, seed and run the stack")
    start.add_argument("--detach", action="store_true", help="return once ready, leave it running")
    commands.add_parser("down", help="stop the stack `make up` recorded")
    follow = commands.add_parser("logs", help="the processes' logs, merged and readable")
    follow.add_argument("--lines", type=int, default=20, help="lines of each log to show first")
    follow.add_argument("--no-follow", action="store_true", help="print them and return")
    wipe = commands.add_parser("reset", help="drop the schemas, roles, queues make up created")
    wipe.add_argument("--yes", action="store_true", help="do not ask first")
    args = parser.parse_args(argv)
    command: str = args.command or "up"
    report = functools.partial(say, command)
    try:
        if command == "up":
            from shop_dev.up import up

            up(run_dir(), detach=getattr(args, "detach", False), say=report)
        elif command == "down":
            down(run_dir(), say=report)
        elif command == "logs":
            from shop_dev.up import logs

            logs(run_dir(), lines=args.lines, follow=not args.no_follow, say=report)
        else:
            reset(run_dir(), yes=args.yes, say=report)
    except DevStackError as exc:
        print(f"[make {command}] ERROR: {exc}", file=sys.stderr, flush=True)  # noqa: T201
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C where no handler is installed (say, during a prompt)
        sys.exit(130)


def down(run_dir: Path, *, say: Callable[[str], None]) -> None:
    state = RunState.load(run_dir)
    if state is None:
        say(f"nothing to stop: no stack is recorded in {run_dir}/ (`make up` records one)")
        return
    if not state.alive():
        state.clear()
        say(f"nothing to stop: the stack recorded in {run_dir}/ is no longer running")
        return
    stopped = stop_recorded(state, say)
    say(f"stopped {', '.join(stopped)}")


def reset(run_dir: Path, *, yes: bool, say: Callable[[str], None]) -> None:
    from shop_common.db.provision import admin_dsn
    from shop_dev.reset import plan_reset
    from shop_dev.stack import Stack

    state = RunState.load(run_dir)
    if state is not None and (alive := state.alive()):
        names = ", ".join(p.name for p in alive)
        raise DevStackError(f"a stack is running ({names}): `make down` first, then `make reset`")
    stack = Stack.from_environment()
    plan = asyncio.run(plan_reset(stack, admin_dsn()))
    if blockers := plan.blockers():
        raise DevStackError(
            "not dropping anything while it is in use: "
            + "; ".join(blockers)
            + ".\n  Stop what uses it (a stack `make up` did not record, a `make test` run "
            "with these settings, a psql session) and run `make reset` again."
        )
    if plan.empty:
        say("nothing to reset: none of the schemas, roles, queues or exchanges exist")
        return
    say("this drops:")
    for line in plan.describe():
        say(f"  {line}")
    if not yes:
        try:
            answer = input('[make reset] type "yes" to drop them: ')
        except EOFError:
            raise DevStackError(
                "make reset asks before it drops anything and there is no one to ask (no "
                "input). Run `make reset YES=1` to drop without asking."
            ) from None
        if answer.strip().lower() not in {"y", "yes"}:
            say("nothing dropped")
            sys.exit(1)
    asyncio.run(plan.execute(say))
    (run_dir / "tokens.sh").unlink(missing_ok=True)
    say("done: the next `make up` provisions everything from scratch")


if __name__ == "__main__":
    main()

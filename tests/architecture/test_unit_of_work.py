"""ADR 0010: only a service's `service.py` modules begin (or commit) a transaction.

Repositories, the outbox, event handlers, routers and workers run in a transaction that a
service function, or shop_common's consumer, began. Checked on the source text (AST), so a
violation fails here before anything runs.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import parse_python

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/src"))
# Calls that open or end a transaction: `session.begin()`, `sessions.begin()`,
# `engine.begin()`, savepoints, and explicit commits.
TRANSACTION_CALLS = frozenset({"begin", "begin_nested", "commit"})
ALLOWED_MODULE = "service.py"


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    call: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: .{self.call}() outside a service.py module"


def transaction_calls(source: str) -> list[tuple[int, str]]:
    """(line, method) of every `<anything>.begin(...)`-like call in `source`."""
    return sorted(
        (node.lineno, node.func.attr)
        for node in ast.walk(parse_python(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in TRANSACTION_CALLS
    )


def violations(src: Path) -> list[Violation]:
    found: list[Violation] = []
    for module in sorted(src.rglob("*.py")):
        if module.name == ALLOWED_MODULE:
            continue
        rel = module.relative_to(ROOT).as_posix()
        calls = transaction_calls(module.read_text())
        found += [Violation(rel, line, call) for line, call in calls]
    return found


def test_every_service_is_checked() -> None:
    assert {"catalog", "orders"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_only_service_modules_begin_transactions(service: str) -> None:
    found = violations(ROOT / "services" / service / "src")
    assert not found, "\n".join(map(str, found))


def test_the_check_sees_what_it_must() -> None:
    source = """
async def add(session, sessions, engine):
    async with session.begin():
        pass
    async with sessions() as s, s.begin():
        pass
    async with engine.begin() as conn:
        await conn.begin_nested()
    await session.commit()
    await session.execute(x)
"""
    assert [call for _, call in transaction_calls(source)] == [
        "begin",
        "begin",
        "begin",
        "begin_nested",
        "commit",
    ]

"""Whose fault a failed delivery is: the message's, or the consumer's own database.

Only a failure of the message (a handler bug, data it cannot digest) may spend the message's
retry budget and end in the parking queue. A failure of the service's own infrastructure
says nothing about the message: the consumer waits for the database instead (ADR 0011).
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shop_common.messaging.errors import PermanentError

__all__ = ["Failure", "connection_lost", "contention", "failure_of"]


class Failure(StrEnum):
    """What a failed delivery means, from the most to the least the message's fault."""

    MESSAGE = "message"  # retried with a delay, counted; parked when the budget is spent
    CONTENTION = "contention"  # deadlock, serialization failure, lock timeout: again, soon
    CONNECTION = "connection"  # a connection broke, but the database answers: again, soon
    UNAVAILABLE = "unavailable"  # the database does not answer: pause until it does


# Deadlock, serialization failure, lock_timeout: another transaction was in the way.
_CONTENTION = frozenset({"40001", "40P01", "55P03"})
# Connection exceptions (08), insufficient resources such as too many connections (53),
# shutdown / cannot connect now (57P01-57P03), idle-in-transaction timeout (25P03), the
# service's own login refused or its database missing (28, 3D000).
_CONNECTION_CLASSES = ("08", "53", "28")
_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03", "25P03", "3D000"})


def failure_of(exc: BaseException, *, database_answers: bool) -> Failure:
    """Classify a handler failure; `database_answers` is a fresh probe of the database.

    Anything at all while the database does not answer is the infrastructure's; so is a
    broken connection or contention while it does. Everything else is the message's.
    """
    if isinstance(exc, PermanentError):
        return Failure.MESSAGE
    if contention(exc):
        return Failure.CONTENTION
    if not database_answers:
        return Failure.UNAVAILABLE
    if connection_lost(exc):
        return Failure.CONNECTION
    return Failure.MESSAGE


def contention(exc: BaseException) -> bool:
    return any(_sqlstate(e) in _CONTENTION for e in _chain(exc))


def connection_lost(exc: BaseException) -> bool:
    """A database connection broke or could not be had (pool timeout, refused login, ...)."""
    for e in _chain(exc):
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, PoolTimeoutError | asyncpg.PostgresConnectionError):
            return True
        state = _sqlstate(e)
        if state is not None and (
            state.startswith(_CONNECTION_CLASSES) or state in _CONNECTION_STATES
        ):
            return True
    return False


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what SQLAlchemy wrapped (`orig`) and its causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen or len(seen) > 16:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [
            orig if isinstance(orig, BaseException) else None,
            current.__cause__,
            current.__context__,
        ]

"""Reading PostgreSQL error codes out of driver exceptions, and telling outages from bugs."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shop_common.errors import ServiceUnavailable

__all__ = ["DatabaseUnavailable", "is_connection_error", "is_transient_error", "sqlstate"]

# SQLSTATEs that say the connection is gone or cannot be had: class 08 (connection
# exception), class 28 (the login refused: a role disabled or a password rotated),
# 57P01-57P03 (the server is shutting down, crashed or not accepting yet) and 53300 (too
# many connections).
_CONNECTION_STATES = ("08", "28", "57P01", "57P02", "57P03", "53300")
# Besides those, a transaction that lost a race may simply be run again: serialization
# failure and deadlock.
_RETRYABLE_STATES = ("40001", "40P01")


class DatabaseUnavailable(ServiceUnavailable):
    """The service's own database cannot be reached right now (503 with Retry-After)."""

    slug = "database-unavailable"


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind a driver error (SQLAlchemy's or asyncpg's), if any."""
    for candidate in _causes(exc):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_connection_error(exc: BaseException) -> bool:
    """True when `exc` says the database connection is gone or cannot be had (dropped,
    refused, timed out, pool exhausted, server shutting down): an outage, not a bug and not
    bad input. Nothing of the failed transaction was committed unless COMMIT was under way."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for candidate in _causes(exc):
        if isinstance(candidate, PoolTimeout | OSError | TimeoutError):
            return True
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str) and code.startswith(_CONNECTION_STATES):
            return True
        # asyncpg's InterfaceError covers both "connection is closed" (an outage) and
        # misuse such as two operations at once (a bug): only the first counts.
        if type(candidate).__name__ == "InterfaceError" and "closed" in str(candidate):
            return True
    return False


def is_transient_error(exc: BaseException) -> bool:
    """`is_connection_error`, or a transaction that lost a race (serialization failure,
    deadlock): trying the whole unit of work again later can succeed."""
    return is_connection_error(exc) or (sqlstate(exc) or "").startswith(_RETRYABLE_STATES)


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc`, the driver error SQLAlchemy wraps (`orig`) and what that was raised from."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(found) < 6:
        current = todo.pop(0)
        if current is None or current in found:
            continue
        found.append(current)
        todo.extend([getattr(current, "orig", None), current.__cause__])
    return found

"""Reading PostgreSQL error codes out of driver exceptions."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError


def sqlstate(exc: DBAPIError) -> str | None:
    """The PostgreSQL SQLSTATE behind a driver error, if there is one."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None

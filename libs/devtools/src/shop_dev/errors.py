"""The one error the dev tooling expects: its message says what to do, it prints no traceback."""

from __future__ import annotations


class DevStackError(Exception):
    """What `make up`, `make down`, `make logs` or `make reset` cannot work around."""

"""Compose-file variable interpolation, as `docker compose config` does it.

Supports the forms of the Compose Specification: $VAR, ${VAR}, ${VAR:-default},
${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+replacement}, ${VAR+replacement}
and $$ (a literal dollar). Defaults are taken literally (no nested interpolation).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_TOKEN = re.compile(
    r"\$(?:"
    r"(?P<escaped>\$)"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<invalid>)"
    r")"
)


class InterpolationError(ValueError):
    """A required variable is missing, or the syntax is not valid Compose interpolation."""


def referenced_variables(text: str) -> set[str]:
    return {
        m.group("name") or m.group("bare")
        for m in _TOKEN.finditer(text)
        if m.group("name") or m.group("bare")
    }


def interpolate_string(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("invalid") is not None:
            raise InterpolationError(f"invalid interpolation in {value!r}")
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op is None:
            return current or ""
        unset_or_empty = not current
        missing = unset_or_empty if op.startswith(":") else current is None
        kind = op[-1]
        if kind == "-":
            return arg if missing else str(current)
        if kind == "?":
            if missing:
                raise InterpolationError(f"required variable {name} is missing: {arg}")
            return str(current)
        return "" if missing else arg  # "+": replacement when set

    return _TOKEN.sub(replace, value)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string value (not keys) of a loaded compose document."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, str):
        return interpolate_string(node, env)
    return node


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file; blank lines and # comments ignored."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path.name}:{number}: not a KEY=VALUE line")
        values[key] = value.strip().strip("'\"")
    return values

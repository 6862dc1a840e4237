"""Entity tags of products and the If-Match rules (RFC 9110 strong comparison)."""

from __future__ import annotations

import re

from shop_catalog.errors import IfMatchRequired

_STRONG_TAG = re.compile(r'^"(\d{1,18})"$')


def etag(version: int) -> str:
    return f'"{version}"'


def versions_from_if_match(if_match: str | None) -> list[int] | None:
    """Versions the client says it has; None means `*` (any). Weak tags never match."""
    if if_match is None:
        raise IfMatchRequired("Send If-Match with the product's ETag to change it.")
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        return None
    return [int(m.group(1)) for t in tags if (m := _STRONG_TAG.match(t))]

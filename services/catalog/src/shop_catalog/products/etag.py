"""Entity tags of products and pages; If-Match (strong) and If-None-Match (weak) rules."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from uuid import UUID

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


def page_etag(items: Iterable[tuple[UUID | str, int]], next_cursor: str | None) -> str:
    """A weak tag for a page of products, from their (id, version): it changes when any
    item, its version or the page boundary changes (weak: equal tags mean the same items,
    not the same bytes)."""
    digest = hashlib.sha256()
    for product_id, version in items:
        digest.update(f"{product_id}:{version};".encode())
    digest.update((next_cursor or "").encode())
    return f'W/"{digest.hexdigest()[:20]}"'


def none_match(if_none_match: str | None, current: str) -> bool:
    """False when If-None-Match names the current tag (weak comparison, RFC 9110 13.1.2):
    the client's copy is current and a GET answers 304."""
    if if_none_match is None:
        return True
    tags = [t.strip() for t in if_none_match.split(",")]
    if "*" in tags:
        return False
    opaque = current.removeprefix("W/")
    return all(t.removeprefix("W/") != opaque for t in tags)

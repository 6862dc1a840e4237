"""Catalog's domain errors: `shop_common.errors` problem types, rendered in one place."""

from __future__ import annotations

from shop_common.errors import Conflict, NotFound, PreconditionFailed, PreconditionRequired


class ProductNotFound(NotFound):
    slug = "product-not-found"


class DuplicateSku(Conflict):
    slug = "duplicate-sku"


class InsufficientStock(Conflict):
    slug = "insufficient-stock"


class StaleProduct(PreconditionFailed):
    slug = "stale-product"


class IfMatchRequired(PreconditionRequired):
    slug = "if-match-required"

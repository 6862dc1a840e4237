"""Catalog's domain errors; each is a problem type rendered by shop_common.web.problems."""

from __future__ import annotations

from shop_common.web.problems import Conflict, NotFound, PreconditionFailed, PreconditionRequired


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

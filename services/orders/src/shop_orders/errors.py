"""Orders' domain errors: `shop_common.errors` problem types, rendered in one place."""

from __future__ import annotations

from shop_common.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
)


class OrderNotFound(NotFound):
    slug = "order-not-found"


class OrderNotCancellable(Conflict):
    slug = "order-not-cancellable"


class IdempotencyKeyRequired(BadRequest):
    slug = "idempotency-key-required"


class IdempotencyKeyReused(Unprocessable):
    slug = "idempotency-key-reused"


class IdempotencyKeyInFlight(Conflict):
    slug = "idempotency-key-in-flight"


class UnorderableLines(Unprocessable):
    slug = "unorderable-lines"


class PricingUnavailable(ServiceUnavailable):
    slug = "pricing-unavailable"

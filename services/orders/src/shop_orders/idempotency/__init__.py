"""Idempotency-Key handling for order placement (per customer, expiring, in PostgreSQL)."""

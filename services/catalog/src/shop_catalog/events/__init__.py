"""Catalog's reactions to Orders' events: reserving and releasing stock for orders."""

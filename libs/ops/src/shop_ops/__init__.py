"""shop-ops, the operator CLI: outbox status, parked messages, one order's saga timeline, reconcile.

An operator's composition root (ADR 0014): it reads each service's own tables through that
service's own role and settings, and its queues through its own broker URL. It imports the
services' table definitions, never their entrypoints, routers or handlers; nothing imports
it. `shop_ops.cli` is the command line; the other modules are what the commands do.
"""

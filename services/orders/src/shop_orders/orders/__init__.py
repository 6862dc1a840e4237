"""Orders: placing, reading and cancelling customer orders."""

"""Stock reservations for orders: reserve all lines or none, release exactly once."""

"""shop_orders."""

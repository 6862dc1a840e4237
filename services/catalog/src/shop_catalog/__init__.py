"""shop_catalog."""

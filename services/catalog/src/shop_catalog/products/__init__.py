"""Products: the catalog's items, their prices and their stock."""

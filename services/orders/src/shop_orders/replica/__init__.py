"""Local copy of Catalog's products, kept from its events: the pricing fallback."""

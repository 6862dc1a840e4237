"""Orders' reactions to Catalog's events: the saga's outcome and the product replica."""

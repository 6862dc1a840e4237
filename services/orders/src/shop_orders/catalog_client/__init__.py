"""Orders' view of the Catalog API, over the shared resilient HTTP client."""

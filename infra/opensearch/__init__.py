"""Adapters that speak OpenSearch: the catalog index and the search port's implementation on it."""

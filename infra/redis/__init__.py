"""Adapters that speak Redis: the cart view, the product and search caches, rate limiting."""

"""The catalog area: products and categories, stock per SKU (inventory) and reviews;
each with its Application, handlers and the ports they need."""

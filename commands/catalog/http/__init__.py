"""The catalog area's write API: products and categories, stock, reviews."""

"""Read models of the ordering area (carts, orders, payments) and the queries over them."""

"""The ordering area's write API: carts and checkout, orders after checkout, payment
provider webhooks."""

"""The ordering area: carts and orders (one Application), payments (its own), the
payment gateway port, the checkout saga and the sweep of abandoned authentications."""

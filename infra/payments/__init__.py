"""Payment provider adapters behind the gateway port: the sandbox, Stripe, PayPal, and
the ledger of every gateway call."""

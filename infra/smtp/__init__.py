"""Email through any SMTP server (a relay, a provider's submission port, Mailpit)."""

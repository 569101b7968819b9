"""The write side. Each bounded area is a sub-package of the same shape: its
Application(s) with their command handlers, the ports those handlers need, its
policies and sagas, and ``http/`` (its routers and request bodies). ``seeding`` is
the bulk seeder.

What sits here at the top is the shared kernel, used by every area and owned by
none: the base Application and the conflict retry (``application``), refusals
(``errors``), idempotency keys (``idempotency``), the shared ports (``ports``:
clock, rate limits, idempotency records, waiting for a projection), the card-data guard every
request passes (``card_data``) and the HTTP plumbing every router shares
(``http``). A module belongs here only if two areas need it."""

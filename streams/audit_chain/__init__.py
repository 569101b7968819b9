"""Tamper evidence over the logs (ADR 0023): a hash chain per log over the stored
event records, kept incrementally in Postgres by a supervised loop, its heads
signed (Ed25519) and anchored where the database cannot rewrite them, and the
verification that names the first position that no longer matches."""

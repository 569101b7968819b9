"""Adapters that speak PostgreSQL: the embedded server and connection settings, the
event store's recorders, and the Postgres homes of the write side's ports."""

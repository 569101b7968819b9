"""The suppression list in Postgres (``commands.notifications.ports.Suppressions``):
a permanent bounce stops all mail to an address; a complaint or an unsubscribe
stops marketing only. A full suppression is never weakened to marketing-only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg_pool import ConnectionPool

DDL = """
CREATE SCHEMA IF NOT EXISTS notify;
CREATE TABLE IF NOT EXISTS notify.suppressions (
    address text PRIMARY KEY,
    marketing_only boolean NOT NULL,
    reason text NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
"""


class PostgresSuppressions:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def suppressed_among(self, addresses: Sequence[str]) -> dict[str, bool]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT address, marketing_only FROM notify.suppressions WHERE address = ANY(%s)",
                ([address.lower() for address in addresses],),
            ).fetchall()
        return dict(rows)

    def is_suppressed(self, address: str, marketing: bool) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT marketing_only FROM notify.suppressions WHERE address = %s",
                (address.lower(),),
            ).fetchone()
        return row is not None and (marketing or not row[0])

    def suppress(self, address: str, reason: str, marketing_only: bool) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO notify.suppressions (address, marketing_only, reason) "
                "VALUES (%s, %s, %s) ON CONFLICT (address) DO UPDATE SET "
                "marketing_only = suppressions.marketing_only AND excluded.marketing_only, "
                "reason = CASE WHEN suppressions.marketing_only AND NOT excluded.marketing_only "
                "THEN excluded.reason ELSE suppressions.reason END",
                (address.lower(), marketing_only, reason),
            )

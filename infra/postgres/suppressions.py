"""The suppression list in Postgres (``commands.notifications.ports.Suppressions``):
a permanent bounce stops all mail to an address; a complaint or an unsubscribe
stops marketing only. A full suppression is never weakened to marketing-only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Cursor
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

    def forget(self, user_id: UUID, cursor: Cursor[Any]) -> None:
        """Delete the suppressions of the addresses the user was mailed at (erased).

        Deleted, not hashed: an entry exists to honour its holder's unsubscribe or
        complaint, or a bounce, for an address the shop would otherwise mail, and
        after the erasure no account of the shop mails it (the account's address
        reads as erased). A hash would keep the person recognisable (whoever holds
        the address recomputes it: a pseudonym, still personal data), which is what
        the erasure ends. Should they sign up again with it, that is a consent they
        give anew; a dead mailbox bounces once and is suppressed again by the
        feedback. An address also mailed for another account is kept: its
        suppression may be that account's (an address given up, taken up since).

        The addresses come from the user's deliveries: before the delivery log
        forgets them (``PostgresDeliveryLog.forget``). The check for another
        account reads the deliveries by address, unindexed: erasures are rare."""
        cursor.execute(
            "DELETE FROM notify.suppressions s WHERE s.address IN (SELECT lower(d.address) "
            "FROM notify.deliveries d JOIN notify.notifications n ON n.id = d.notification_id "
            "WHERE n.user_id = %(user)s AND d.channel = 'email') "
            "AND NOT EXISTS (SELECT 1 FROM notify.deliveries d "
            "JOIN notify.notifications n ON n.id = d.notification_id "
            "WHERE lower(d.address) = s.address AND d.channel = 'email' "
            "AND n.user_id IS DISTINCT FROM %(user)s)",
            {"user": user_id},
        )

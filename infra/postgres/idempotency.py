"""The Postgres home of idempotency keys (``IdempotencyStore`` port)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from commands.ports import IdempotencyRecord, StoredResponse

DDL = """
CREATE TABLE IF NOT EXISTS public.idempotency_keys (
    scope text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    status integer,
    body jsonb,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_age ON public.idempotency_keys (claimed_at);
"""
RETENTION_HOURS = 24


class PostgresIdempotencyStore:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def claim(self, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        with self._pool.connection() as conn:
            claimed = conn.execute(
                "INSERT INTO public.idempotency_keys (scope, key, fingerprint) "
                "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (scope, key, fingerprint),
            ).fetchone()
            if claimed is not None:
                return None
            row = conn.execute(
                "SELECT fingerprint, status, body, extract(epoch FROM now() - claimed_at) "
                "FROM public.idempotency_keys WHERE scope = %s AND key = %s",
                (scope, key),
            ).fetchone()
        if row is None:  # released between the two statements: claim again
            return self.claim(scope, key, fingerprint)
        response = None if row[1] is None else StoredResponse(int(row[1]), row[2])
        return IdempotencyRecord(str(row[0]), response, float(row[3]))

    def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE public.idempotency_keys SET status = %s, body = %s "
                "WHERE scope = %s AND key = %s",
                (response.status, Jsonb(response.body), scope, key),
            )

    def release(self, scope: str, key: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM public.idempotency_keys "
                "WHERE scope = %s AND key = %s AND status IS NULL",
                (scope, key),
            )

    def take_over(self, scope: str, key: str, older_than_seconds: float) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(
                "UPDATE public.idempotency_keys SET claimed_at = now() "
                "WHERE scope = %s AND key = %s AND status IS NULL "
                "AND claimed_at < now() - make_interval(secs => %s) RETURNING 1",
                (scope, key, older_than_seconds),
            ).fetchone()
        return row is not None

    def purge_expired(self) -> int:
        with self._pool.connection() as conn:
            deleted: int = conn.execute(
                "DELETE FROM public.idempotency_keys "
                "WHERE claimed_at < now() - make_interval(hours => %s)",
                (RETENTION_HOURS,),
            ).rowcount
            return deleted

"""Which relay publishes a log, and how far it has confirmably got.

One relay per log at a time: a Postgres session advisory lock, held on a connection
of its own. A relay that dies loses its session and so its lock, and a waiting
relay takes over. The confirmed position is written through that same connection:
a relay whose session is gone (and whose lock another relay may hold by now) cannot
confirm anything; it may at worst publish a few events twice, which consumers drop.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

DDL = """
CREATE TABLE IF NOT EXISTS public.stream_relay_positions (
    log text PRIMARY KEY,
    position bigint NOT NULL,
    partition_offsets jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""
LOCK_NAMESPACE = 0x5E1A7
"""First key of the relay's advisory locks (the second is a hash of the log name)."""


@dataclass
class Confirmed:
    position: int
    """The last notification id whose delivery (and every earlier one's) Kafka acked."""
    offsets: dict[str, int] = field(default_factory=dict)
    """Partition -> the highest offset Kafka gave a delivery of ours: an offset at or
    below it later means the topic was recreated (a broker that lost its data)."""


class RelayLease:
    def __init__(self, conninfo: str, log: str) -> None:
        self.conninfo = conninfo
        self.log = log
        self._conn: AsyncConnection[Any] | None = None

    async def acquire(self, stopping: asyncio.Event, poll_interval: float = 0.5) -> bool:
        """Wait until this process holds the log's lock (True) or is stopping (False)."""
        conn = await AsyncConnection.connect(self.conninfo, autocommit=True)
        try:
            async with conn.transaction():
                # Relays start together: concurrent CREATE TABLE IF NOT EXISTS can fail.
                await conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_NAMESPACE,))
                await conn.execute(DDL)
            while not stopping.is_set():
                cursor = await conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, self.log)
                )
                row = await cursor.fetchone()
                if row is not None and row[0]:
                    self._conn = conn
                    # Listed from the start, even while its log is empty.
                    await conn.execute(
                        "INSERT INTO public.stream_relay_positions "
                        "(log, position, partition_offsets) VALUES (%s, 0, '{}') "
                        "ON CONFLICT (log) DO NOTHING",
                        (self.log,),
                    )
                    return True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), poll_interval)
        except BaseException:
            await conn.close()
            raise
        await conn.close()
        return False

    async def release(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # ends the session: the lock goes with it
            self._conn = None

    def _held(self) -> AsyncConnection[Any]:
        if self._conn is None:
            raise RuntimeError(f"the relay lease of {self.log} is not held")
        return self._conn

    async def load(self) -> Confirmed:
        cursor = await self._held().execute(
            "SELECT position, partition_offsets FROM public.stream_relay_positions WHERE log = %s",
            (self.log,),
        )
        row = await cursor.fetchone()
        if row is None:
            return Confirmed(0)
        return Confirmed(int(row[0]), {str(k): int(v) for k, v in row[1].items()})

    async def confirm(self, confirmed: Confirmed) -> None:
        await self._held().execute(
            "INSERT INTO public.stream_relay_positions (log, position, partition_offsets) "
            "VALUES (%s, %s, %s) ON CONFLICT (log) DO UPDATE SET position = EXCLUDED.position, "
            "partition_offsets = EXCLUDED.partition_offsets, updated_at = now()",
            (self.log, confirmed.position, Jsonb(confirmed.offsets)),
        )

"""Dead letters: events a projection or policy failed on, kept on a topic with the error.

The worker publishes one (keyed ``projection/log/position``) before it moves the
projection past the event, so no failure is dropped silently and the log keeps
flowing. ``shop dlq list`` shows the open ones; ``shop dlq replay`` applies them
again (after a fix) and closes each with a tombstone (a null value for its key, so a
compacted topic forgets it). A replay is recorded in the read model's database in
the same transaction as its changes, so replaying twice changes nothing twice.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import Projection

from projections.engine import View, ViewProjection
from streams.kafka_codec import decode

VERSION = 1
REPLAYED_DDL = """
CREATE TABLE IF NOT EXISTS public.stream_replayed_dead_letters (
    projection text NOT NULL,
    log text NOT NULL,
    position bigint NOT NULL,
    replayed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, log, position)
)
"""


def dlq_topic(prefix: str) -> str:
    return f"{prefix}dead-letters"


@dataclass(frozen=True)
class DeadLetter:
    projection: str
    log: str
    position: int
    error: str
    message: bytes
    """The relayed message's value, as it came."""

    @property
    def key(self) -> bytes:
        return f"{self.projection}/{self.log}/{self.position}".encode()

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "v": VERSION,
                "projection": self.projection,
                "log": self.log,
                "position": self.position,
                "error": self.error,
                "message": self.message.decode(errors="replace"),
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> DeadLetter:
        body = orjson.loads(value)
        return cls(
            projection=body["projection"],
            log=body["log"],
            position=int(body["position"]),
            error=body["error"],
            message=body["message"].encode(),
        )


async def read_open(bootstrap: str, topic: str, timeout: float = 30.0) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        latest: dict[bytes, DeadLetter | None] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = await consumer.getmany(*tps, timeout_ms=500)
            if not batches:
                break  # read to the end (an idle half second)
            for messages in batches.values():
                for m in messages:
                    latest[m.key or b""] = DeadLetter.decode(m.value) if m.value else None
        return [letter for letter in latest.values() if letter is not None]
    finally:
        await consumer.stop()


def open_dead_letters(bootstrap: str, topic: str, timeout: float = 30.0) -> list[DeadLetter]:
    """Dead letters not replayed yet, oldest first per partition."""
    return asyncio.run(read_open(bootstrap, topic, timeout))


def replay(
    letter: DeadLetter, app: Application[Any], view: TrackingRecorder, projection: Projection[Any]
) -> bool:
    """Apply a dead-lettered event again; False when it had been replayed before.
    The projection is past the event's position already, so a view's changes are
    applied without its tracking guard, guarded instead by the replay record."""
    event = decode(letter.message)
    domain_event = event.domain_event(app)
    if not (isinstance(view, View) and isinstance(projection, ViewProjection)):
        # A policy dedupes its effects by event (a mail's id names the event).
        projection.process_event(domain_event, Tracking(event.log, event.position))
        return True
    with view.datastore.transaction(commit=True) as cursor:
        cursor.execute(REPLAYED_DDL)
        cursor.execute(
            "INSERT INTO public.stream_replayed_dead_letters (projection, log, position) "
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING position",
            (letter.projection, letter.log, letter.position),
        )
        if cursor.fetchone() is None:
            return False
        projection.apply(domain_event, cursor)
    return True


async def close(producer: AIOKafkaProducer, topic: str, letter: DeadLetter) -> None:
    """A tombstone for the letter's key: replayed, no longer open."""
    await producer.send_and_wait(topic, None, key=letter.key)

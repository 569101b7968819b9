"""Reading what is on a topic, from the beginning, as a test's witness."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka_codec import RelayedEvent, decode


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes
    headers: dict[str, str]
    event: RelayedEvent

    @property
    def position(self) -> int:
        return self.event.position


async def _read(bootstrap: str, topic: str, until: int, timeout: float) -> list[Record]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                if time.monotonic() > deadline:
                    return []
                await consumer.topics()  # refreshes metadata
                await asyncio.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Record] = []
        while time.monotonic() < deadline:
            batches = await consumer.getmany(*tps, timeout_ms=300)
            for tp, messages in batches.items():
                for m in messages:
                    headers = {k: v.decode() for k, v in m.headers}
                    records.append(
                        Record(tp.partition, m.offset, m.key or b"", headers, decode(m.value))
                    )
            if not batches and max((r.position for r in records), default=0) >= until:
                break
        return records
    finally:
        await consumer.stop()


def read_topic(bootstrap: str, topic: str, until: int = 0, timeout: float = 30.0) -> list[Record]:
    """Every record of ``topic`` (read until nothing more comes and one with a
    position of at least ``until`` was seen, or ``timeout``)."""
    return asyncio.run(_read(bootstrap, topic, until, timeout))

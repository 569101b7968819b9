"""Settings -> Kafka clients, and the scaled mode's processes built from a container:
the relay (``shop serve relay``) and the stream worker (``shop serve worker``)."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Awaitable, Callable

import faust
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from infra.entrypoints import logs
from infra.entrypoints.heartbeat import BEAT_SECONDS, beat, beating, heartbeat_file
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap
from streams.relay import KafkaClients, Relay, RelayConfig
from streams.worker import WorkerConfig, make_worker_app

STARTUP_LOCK = 0x5E1A9


def bootstrap_exclusively(settings: Settings) -> Container:
    """A migrated container for a role of the scaled mode. Roles start together, and
    concurrent DDL fails ("tuple concurrently updated" when two Applications create
    their tables): one process bootstraps and migrates at a time."""
    if not settings.database_url:
        raise ValueError("the scaled mode needs SHOP_DATABASE_URL (a shared Postgres)")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s, 0)", (STARTUP_LOCK,))
        container = bootstrap(settings)
        try:
            container.migrate()
        except BaseException:
            container.close()
            raise
        return container  # the lock ends with the session


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.kafka_security_protocol == "SSL":
        return ssl.create_default_context()
    return None


def _security(settings: Settings) -> dict[str, object]:
    context = _ssl_context(settings)
    if context is not None:
        return {"security_protocol": "SSL", "ssl_context": context}
    return {"security_protocol": "PLAINTEXT"}


def kafka_clients(settings: Settings) -> KafkaClients:
    timeout_ms = int(settings.kafka_request_timeout * 1000)

    def producer() -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=settings.kafka_idempotent_producer,
            # A batch is retried (every retry_backoff_ms) until this timeout, then fails:
            # the relay's retries are bounded by it and by relay_max_failures.
            request_timeout_ms=timeout_ms,
            retry_backoff_ms=200,
            linger_ms=5,
            max_batch_size=256 * 1024,
            **_security(settings),
        )

    def admin() -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap,
            request_timeout_ms=timeout_ms,
            **_security(settings),
        )

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            request_timeout_ms=timeout_ms,
            **_security(settings),
        )

    return KafkaClients(producer=producer, admin=admin, consumer=consumer)


async def kafka_answers(settings: Settings, timeout: float) -> None:
    """A metadata request to the brokers, each request bounded by ``timeout`` (the
    readiness of a role that uses Kafka); raises when none answers."""
    bounded = settings.model_copy(update={"kafka_request_timeout": timeout})
    admin = kafka_clients(bounded).admin()
    try:
        await admin.start()  # bootstraps from a broker: the cluster's metadata
        await admin.describe_cluster()  # and again from a broker it advertises
    finally:
        await admin.close()


def relay_config(settings: Settings) -> RelayConfig:
    return RelayConfig(
        topic_prefix=settings.kafka_topic_prefix,
        partitions=settings.kafka_partitions,
        replication_factor=settings.kafka_replication_factor,
        batch_size=settings.relay_batch_size,
        max_in_flight=settings.relay_max_in_flight,
        poll_interval=settings.relay_poll_interval,
        max_failures=settings.relay_max_failures,
    )


def build_relay(container: Container) -> Relay:
    settings = container.settings
    return Relay(
        container.applications(),
        container.conninfo,
        kafka_clients(settings),
        relay_config(settings),
    )


def _until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stopping)``; SIGTERM or SIGINT sets ``stopping``."""

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await main(stopping)

    asyncio.run(run())


def serve_relay(container: Container) -> None:
    relay = build_relay(container)
    alive = heartbeat_file(container.settings.data_dir, "relay")

    async def main(stopping: asyncio.Event) -> None:
        beats = asyncio.create_task(beating(alive, stopping))
        try:
            await relay.run(stopping)
        finally:
            beats.cancel()

    _until_signalled(main)


def build_worker(container: Container) -> faust.App:
    settings = container.settings
    return make_worker_app(
        WorkerConfig(
            group=settings.worker_group,
            bootstrap=settings.kafka_bootstrap,
            topic_prefix=settings.kafka_topic_prefix,
            session_timeout=settings.worker_session_timeout,
            gap_timeout=settings.worker_gap_timeout,
            max_held=settings.worker_max_held,
            fetch_wait=settings.worker_fetch_wait,
            ssl_context=_ssl_context(settings),
        ),
        container.applications(),
        container.specs,
        container.active_generations,
        container.ensure_generation,
        container.conninfo,
    )


def serve_worker(container: Container) -> None:
    from faust.worker import Worker

    worker_app = build_worker(container)
    alive = heartbeat_file(container.settings.data_dir, "worker")

    async def heartbeat() -> None:
        beat(alive)

    worker_app.timer(interval=BEAT_SECONDS)(heartbeat)  # on faust's own loop
    container.start_feed_followers()
    # Not faust's own handler (colored text on stdout): the process's (logs.py).
    logging_config = logs.logging_config(container.settings.log_format)
    Worker(worker_app, loglevel="INFO", logging_config=logging_config).execute_from_commandline()

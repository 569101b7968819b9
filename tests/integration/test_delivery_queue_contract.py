"""The delivery queue contract (``commands.notifications.ports.DeliveryQueue``): one
suite of behaviours (``DeliveryQueueContract``) run against each adapter:

- ``TestPostgresDeliveryQueue``: the deliveries table itself, leased with ``FOR
  UPDATE SKIP LOCKED``;
- ``TestSqsDeliveryQueue``: one SQS queue per channel (moto server), each with a
  dead-letter queue, filled by the dispatcher from the same table.

Deliveries are recorded as the notifier records them (``decide``, ``record``), and
the deliverer is the real one, with a fake sender. Leases and visibility timeouts
are one second, so the waits stay short.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto.server import ThreadedMotoServer
from psycopg_pool import ConnectionPool

from commands.notifications.delivery import Deliverer
from commands.notifications.ports import (
    Content,
    DeliveryQueue,
    Job,
    Outcome,
    Outgoing,
    TransientFailure,
)
from domain.notifications import Channel, Kind
from infra.amazon.sqs_dispatch import SqsDispatcher
from infra.amazon.sqs_queue import SqsDeliveryQueue
from infra.postgres.notifications import PostgresDeliveryLog, PostgresDeliveryQueue
from tests.support.notify_rows import attempted, decided, delivery_on, notify_pool

pytestmark = pytest.mark.integration

LEASE = 1
"""Seconds a taken delivery stays hidden (the lease, the visibility timeout)."""
PAST_LEASE = LEASE + 0.3


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Backend:
    queue: DeliveryQueue
    pool: ConnectionPool[Any]
    publish: Callable[[], object]
    """Hands recorded deliveries to the queue (the dispatcher; nothing on Postgres)."""
    copy: Callable[[UUID], None]
    """A second message for a delivery, as a dispatcher that crashed before its mark
    sends (nothing on Postgres: the row is the queue)."""


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[UUID] = []
        self.during_send: Callable[[], object] | None = None

    def send(self, outgoing: Outgoing) -> str:
        self.sent.append(outgoing.delivery_id)
        if self.during_send is not None:
            during, self.during_send = self.during_send, None
            during()
        return f"msg-{len(self.sent)}"


class StandInRenderer:
    """The queue is under test, not the templates."""

    def render(
        self, kind: Kind, channel: Channel, locale: str, context: Mapping[str, Any]
    ) -> Content:
        return Content(subject=str(kind), text="hello")


class NoSuppressions:
    def suppressed_among(self, addresses: Sequence[str]) -> dict[str, bool]:
        return {}

    def suppress(self, address: str, reason: str, marketing_only: bool) -> None:
        raise AssertionError("not in these tests")


def deliverer(
    backend: Backend, sender: FakeSender, batch: int = 100, log: PostgresDeliveryLog | None = None
) -> Deliverer:
    renderer: Any = StandInRenderer()
    return Deliverer(
        Channel.EMAIL,
        queue=backend.queue,
        log=log or PostgresDeliveryLog(backend.pool),
        sender=sender,
        renderer=renderer,
        suppressions=NoSuppressions(),
        unsubscribe_headers=lambda address: {},
        clock=now,
        batch=batch,
    )


def emails(backend: Backend, count: int, at: datetime | None = None) -> list[UUID]:
    """``count`` notifications by email and in the app; their email deliveries."""
    decisions = [
        decided(backend.pool, Kind.ORDER_SHIPPED, uuid4(), at or now()) for _ in range(count)
    ]
    backend.publish()
    return [delivery_on(d, Channel.EMAIL) for d in decisions]


def ids(jobs: list[Job]) -> set[UUID]:
    return {job.delivery_id for job in jobs}


class DeliveryQueueContract:
    """What every delivery queue does. Subclasses provide ``backend``."""

    @pytest.fixture
    def backend(self, database_url: str) -> Backend:
        raise NotImplementedError

    def test_take_returns_due_deliveries_of_its_channel_only(self, backend: Backend) -> None:
        due = emails(backend, 3)
        emails(backend, 1, at=now() + timedelta(hours=1))  # quiet hours: not due yet

        taken = backend.queue.take(Channel.EMAIL, 10, 0)

        assert ids(taken) == set(due) and len(taken) == 3
        in_app = backend.queue.take(Channel.IN_APP, 10, 0)
        assert len(in_app) == 3 and not ids(in_app) & set(due)
        assert backend.queue.take(Channel.SMS, 10, 0) == []

    def test_take_stops_at_its_limit(self, backend: Backend) -> None:
        due = emails(backend, 12)

        first = backend.queue.take(Channel.EMAIL, 5, 0)
        rest = backend.queue.take(Channel.EMAIL, 100, 0)

        assert (len(first), len(rest)) == (5, 7)
        assert ids(first) | ids(rest) == set(due)

    def test_take_waits_for_the_first_delivery(self, backend: Backend) -> None:
        taken: list[Job] = []
        taker = threading.Thread(
            target=lambda: taken.extend(backend.queue.take(Channel.EMAIL, 10, 5))
        )
        started = time.monotonic()
        taker.start()
        time.sleep(0.3)
        (delivery,) = emails(backend, 1)
        taker.join(timeout=10)

        assert ids(taken) == {delivery}
        assert time.monotonic() - started < 3

    def test_a_taken_delivery_is_hidden_until_its_lease_runs_out(self, backend: Backend) -> None:
        (delivery,) = emails(backend, 1)

        assert ids(backend.queue.take(Channel.EMAIL, 10, 0)) == {delivery}
        assert backend.queue.take(Channel.EMAIL, 10, 0) == []
        time.sleep(PAST_LEASE)  # a worker that died with it: it comes back
        assert ids(backend.queue.take(Channel.EMAIL, 10, 0)) == {delivery}

    def test_retry_hides_it_for_about_the_delay(self, backend: Backend) -> None:
        (delivery,) = emails(backend, 1)
        (job,) = backend.queue.take(Channel.EMAIL, 10, 0)

        backend.queue.retry(job, 2 * LEASE)

        time.sleep(PAST_LEASE)
        assert backend.queue.take(Channel.EMAIL, 10, 0) == []
        time.sleep(LEASE)
        assert ids(backend.queue.take(Channel.EMAIL, 10, 0)) == {delivery}

    def test_finish_takes_it_off_for_good(self, backend: Backend) -> None:
        (delivery,) = emails(backend, 1)
        (job,) = backend.queue.take(Channel.EMAIL, 10, 0)

        attempted(backend.pool, delivery, now(), "sent")  # as the deliverer records it
        backend.queue.finish(job)

        assert backend.queue.depth()[Channel.EMAIL] == 0
        time.sleep(PAST_LEASE)
        assert backend.queue.take(Channel.EMAIL, 10, 0) == []

    def test_depth_counts_waiting_and_taken_deliveries_per_channel(self, backend: Backend) -> None:
        emails(backend, 2)
        backend.queue.take(Channel.EMAIL, 1, 0)

        assert backend.queue.depth() == {
            Channel.EMAIL: 2,
            Channel.SMS: 0,
            Channel.PUSH: 0,
            Channel.IN_APP: 2,
        }

    def test_the_deliverer_drops_a_copy_of_a_sent_delivery(self, backend: Backend) -> None:
        (delivery,) = emails(backend, 1)
        sender = FakeSender()
        worker = deliverer(backend, sender)
        assert worker.run_once(0) == 1

        backend.copy(delivery)

        assert worker.run_once(0) == 0
        assert sender.sent == [delivery]
        assert backend.queue.depth()[Channel.EMAIL] == 0

    def test_two_workers_never_send_one_delivery_at_once(self, backend: Backend) -> None:
        (delivery,) = emails(backend, 1)
        backend.copy(delivery)
        sender = FakeSender()
        first, second = deliverer(backend, sender, batch=1), deliverer(backend, sender, batch=1)
        second_attempted: list[int] = []
        # While the first is sending, the second takes the other copy (SQS) or
        # finds the delivery leased (Postgres).
        sender.during_send = lambda: second_attempted.append(second.run_once(0))

        assert first.run_once(0) == 1

        assert second_attempted == [0]
        assert sender.sent == [delivery]
        time.sleep(PAST_LEASE)  # the copy the second took is visible again: dropped
        assert first.run_once(0) == 0
        assert sender.sent == [delivery]
        assert backend.queue.depth()[Channel.EMAIL] == 0

    def test_a_crashed_workers_delivery_is_sent_again(self, backend: Backend) -> None:
        (delivery,) = emails(backend, 1)
        log = PostgresDeliveryLog(backend.pool, in_flight_seconds=LEASE / 2)
        assert ids(backend.queue.take(Channel.EMAIL, 10, 0)) == {delivery}
        log.start_attempts([delivery], now())  # the intent, then the worker died
        sender = FakeSender()

        time.sleep(PAST_LEASE)

        assert deliverer(backend, sender, log=log).run_once(0) == 1
        assert sender.sent == [delivery]

    def test_a_transient_failure_is_offered_again_after_its_backoff(self, backend: Backend) -> None:
        (delivery,) = emails(backend, 1)
        log = PostgresDeliveryLog(backend.pool)
        (job,) = backend.queue.take(Channel.EMAIL, 10, 0)
        attempt = log.start_attempts([delivery], now())[delivery]
        retry_at = now() + timedelta(seconds=2 * LEASE)
        log.record_outcomes([Outcome(delivery, attempt, "retrying", retry_at=retry_at)], now())
        backend.queue.retry(job, 2 * LEASE)

        backend.publish()

        assert backend.queue.depth()[Channel.EMAIL] == 1  # the same message, not a second
        time.sleep(PAST_LEASE)
        assert backend.queue.take(Channel.EMAIL, 10, 0) == []
        time.sleep(LEASE)
        assert [j.delivery_id for j in backend.queue.take(Channel.EMAIL, 10, 0)] == [delivery]


class TestPostgresDeliveryQueue(DeliveryQueueContract):
    @pytest.fixture
    def backend(self, database_url: str) -> Iterator[Backend]:
        with notify_pool(database_url) as pool:
            queue = PostgresDeliveryQueue(pool, database_url, lease_seconds=LEASE)
            yield Backend(queue, pool, publish=lambda: None, copy=lambda delivery: None)
            queue.close()


# --- SQS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def sqs(moto_url: str) -> Any:
    return boto3.client(
        "sqs",
        region_name="eu-west-1",
        endpoint_url=moto_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def queue_urls(sqs: Any) -> dict[Channel, str]:
    """One queue per channel, each with its dead-letter queue, as in
    infra/aws/notifications.tf."""
    prefix = f"t{uuid4().hex[:12]}"
    urls = {}
    for channel in Channel:
        dead = sqs.create_queue(QueueName=f"{prefix}-{channel}-dlq")["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])
        redrive = {"deadLetterTargetArn": dead_arn["Attributes"]["QueueArn"], "maxReceiveCount": 8}
        urls[channel] = sqs.create_queue(
            QueueName=f"{prefix}-{channel}", Attributes={"RedrivePolicy": json.dumps(redrive)}
        )["QueueUrl"]
    return urls


class TestSqsDeliveryQueue(DeliveryQueueContract):
    @pytest.fixture
    def backend(
        self, database_url: str, sqs: Any, queue_urls: dict[Channel, str]
    ) -> Iterator[Backend]:
        with notify_pool(database_url) as pool:
            queue = SqsDeliveryQueue(sqs, queue_urls, visibility_seconds=LEASE)
            dispatcher = SqsDispatcher(pool, sqs, queue_urls)

            def copy(delivery: UUID) -> None:
                sqs.send_message(QueueUrl=queue_urls[Channel.EMAIL], MessageBody=str(delivery))

            yield Backend(queue, pool, publish=dispatcher.dispatch_once, copy=copy)
            queue.close()


class TestSqsDispatcher:
    @pytest.fixture
    def pool(self, database_url: str) -> Iterator[ConnectionPool[Any]]:
        with notify_pool(database_url) as opened:
            yield opened

    def test_dispatches_each_delivery_once(
        self, pool: ConnectionPool[Any], sqs: Any, queue_urls: dict[Channel, str]
    ) -> None:
        decided(pool, Kind.ORDER_SHIPPED, uuid4(), now())
        dispatcher = SqsDispatcher(pool, sqs, queue_urls)

        assert dispatcher.dispatch_once() == 2
        assert dispatcher.dispatch_once() == 0
        assert SqsDeliveryQueue(sqs, queue_urls).depth()[Channel.IN_APP] == 1

    def test_a_later_delivery_is_delayed(
        self, pool: ConnectionPool[Any], sqs: Any, queue_urls: dict[Channel, str]
    ) -> None:
        decided(pool, Kind.ORDER_SHIPPED, uuid4(), now() + timedelta(hours=1))

        SqsDispatcher(pool, sqs, queue_urls).dispatch_once()

        delayed = sqs.get_queue_attributes(
            QueueUrl=queue_urls[Channel.EMAIL],
            AttributeNames=["ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        assert delayed == {"ApproximateNumberOfMessagesDelayed": "1"}

    def test_a_resent_delivery_is_dispatched_again(
        self, pool: ConnectionPool[Any], sqs: Any, queue_urls: dict[Channel, str]
    ) -> None:
        email = delivery_on(decided(pool, Kind.ORDER_SHIPPED, uuid4(), now()), Channel.EMAIL)
        dispatcher, queue = SqsDispatcher(pool, sqs, queue_urls), SqsDeliveryQueue(sqs, queue_urls)
        dispatcher.dispatch_once()
        (job,) = queue.take(Channel.EMAIL, 10, 0)
        attempted(pool, email, now(), "failed", error="bounced")
        queue.finish(job)

        assert PostgresDeliveryLog(pool).resend(email, now())
        assert dispatcher.dispatch_once() == 1
        assert ids(queue.take(Channel.EMAIL, 10, 0)) == {email}

    def test_sqs_away_marks_what_went_and_is_transient(
        self, pool: ConnectionPool[Any], sqs: Any, queue_urls: dict[Channel, str]
    ) -> None:
        decided(pool, Kind.ORDER_SHIPPED, uuid4(), now())
        failing = FailingSecondSend(sqs)
        dispatcher = SqsDispatcher(pool, failing, queue_urls)  # type: ignore[arg-type]

        with pytest.raises(TransientFailure):
            dispatcher.dispatch_once()

        assert SqsDispatcher(pool, sqs, queue_urls).dispatch_once() == 1  # only the other


class FailingSecondSend:
    """An SQS client whose connection drops on the second batch sent."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._sends = 0

    def send_message_batch(self, **request: Any) -> Any:
        self._sends += 1
        if self._sends == 2:
            raise EndpointConnectionError(endpoint_url="http://sqs")
        return self._client.send_message_batch(**request)

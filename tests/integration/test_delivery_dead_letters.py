"""The SQS dead-letter queue (moto server): a delivery's message received more times
than the redrive policy's ``maxReceiveCount`` moves to the channel's dead-letter
queue, as infra/aws/notifications.tf and docker-compose.yml configure it; and
the deliverer's own retry bound, kept under that count, gives up first.

Visibility timeouts are one second and retries a second apart, so each receive
costs about a second."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from psycopg_pool import ConnectionPool

from commands.notifications.delivery import Backoff, Deliverer
from commands.notifications.ports import Outgoing, Sender, TransientFailure
from commands.notifications.rendering import Renderer
from domain.notifications import Channel, Kind
from infra.amazon.sqs_dispatch import SqsDispatcher
from infra.amazon.sqs_queue import SqsDeliveryQueue
from infra.postgres.notifications import PostgresDeliveryLog
from infra.wiring.shared import utc_now
from tests.integration.test_delivery_paths import SHIPPED, Refusing
from tests.integration.test_delivery_queue_contract import NoSuppressions
from tests.integration.test_notifier import Killed
from tests.support import moto_server
from tests.support.notify_rows import decided, delivery_on, notify_pool
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

MAX_RECEIVES = 3
"""The redrive policy's ``maxReceiveCount`` in these tests."""


@dataclass
class Queues:
    sqs: Any
    pool: ConnectionPool[Any]
    urls: dict[Channel, str]
    dead: str
    """The email queue's dead-letter queue."""

    def email(self) -> UUID:
        """An order-shipped mail, recorded and handed to its queue."""
        decision = decided(
            self.pool,
            Kind.ORDER_SHIPPED,
            uuid4(),
            utc_now(),
            channels=frozenset({Channel.EMAIL}),
            context=SHIPPED,
        )
        assert SqsDispatcher(self.pool, self.sqs, self.urls).dispatch_once() == 1
        return delivery_on(decision, Channel.EMAIL)

    def deliverer(self, sender: Sender, max_attempts: int, **log: Any) -> Deliverer:
        return Deliverer(
            Channel.EMAIL,
            queue=SqsDeliveryQueue(self.sqs, self.urls, visibility_seconds=1),
            log=PostgresDeliveryLog(self.pool, **log),
            sender=sender,
            renderer=Renderer(),
            suppressions=NoSuppressions(),
            clock=utc_now,
            backoff=Backoff(max_attempts=max_attempts, base_seconds=0.01, cap_seconds=0.01),
        )

    def dead_letters(self) -> list[str]:
        messages = self.sqs.receive_message(  # a look: left visible for the next
            QueueUrl=self.dead, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        return [m["Body"] for m in messages.get("Messages", [])]

    def state(self, delivery: UUID) -> tuple[str, int]:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT state, attempts FROM notify.deliveries WHERE id = %s", (delivery,)
            ).fetchone()
        assert row is not None
        return row[0], row[1]


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server.moto_server() as url:
        yield url


@pytest.fixture
def queues(moto: str, database_url: str) -> Iterator[Queues]:
    """The email queue with its dead-letter queue (``maxReceiveCount`` 3), as
    infra/aws/notifications.tf makes them; the notifier's tables in Postgres."""
    sqs = moto_server.client(moto, "sqs")
    prefix = f"t{uuid4().hex[:12]}"
    dead = sqs.create_queue(QueueName=f"{prefix}-email-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": dead_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": MAX_RECEIVES,
    }
    email = sqs.create_queue(
        QueueName=f"{prefix}-email", Attributes={"RedrivePolicy": json.dumps(redrive)}
    )["QueueUrl"]
    with notify_pool(database_url) as pool:
        yield Queues(sqs, pool, {Channel.EMAIL: email}, dead)


class KilledOnSend:
    """The worker dies with the message in hand, every time."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, outgoing: Outgoing) -> str:
        self.calls += 1
        raise Killed(outgoing.address)


def until_dead_lettered(queues: Queues, worker: Deliverer) -> list[str]:
    """The worker run (and, when it dies, run again) until the queue has moved the
    message to its dead-letter queue, which happens at the receive after the last
    one allowed; what the dead-letter queue holds."""

    def step() -> list[str]:
        with suppress(Killed):
            worker.run_once(0)
        return queues.dead_letters()

    found: list[str] = eventually(step, "a dead letter", timeout=20)
    return found


def test_a_message_that_kills_its_worker_each_time_lands_in_the_dead_letter_queue(
    queues: Queues,
) -> None:
    delivery = queues.email()
    sender = KilledOnSend()
    # The in-flight guard shorter than the visibility timeout: each receive sends.
    worker = queues.deliverer(sender, max_attempts=10, in_flight_seconds=0.5)

    assert until_dead_lettered(queues, worker) == [str(delivery)]

    assert sender.calls == MAX_RECEIVES
    assert worker.run_once(0) == 0  # gone from the queue
    assert queues.state(delivery) == ("sending", MAX_RECEIVES)  # stuck: the alarm's case


def test_retries_beyond_the_receive_count_end_in_the_dead_letter_queue_unfinished(
    queues: Queues,
) -> None:
    """Each retry is a receive of the same message: a bound above ``maxReceiveCount``
    is never reached, which is why the deployment keeps the count above
    ``SHOP_NOTIFY_MAX_ATTEMPTS`` (infra/aws/notifications.tf)."""
    delivery = queues.email()
    provider = Refusing(TransientFailure("throttled"))
    worker = queues.deliverer(provider, max_attempts=MAX_RECEIVES + 2)

    assert until_dead_lettered(queues, worker) == [str(delivery)]

    assert len(provider.calls) == MAX_RECEIVES
    assert queues.state(delivery) == ("retrying", MAX_RECEIVES)  # never failed, no outcome


def test_a_bound_below_the_receive_count_fails_the_delivery_first(queues: Queues) -> None:
    delivery = queues.email()
    provider = Refusing(TransientFailure("throttled"))
    worker = queues.deliverer(provider, max_attempts=MAX_RECEIVES - 1)

    def failed() -> bool:
        worker.run_once(0)
        return queues.state(delivery)[0] == "failed"

    eventually(failed, "the delivery failed", timeout=20)

    assert len(provider.calls) == MAX_RECEIVES - 1
    time.sleep(1.2)  # past the visibility timeout: a message left behind would be back
    assert worker.run_once(0) == 0
    assert queues.dead_letters() == []


def test_a_message_that_is_not_a_delivery_is_left_for_the_dead_letter_queue(
    queues: Queues,
) -> None:
    queues.sqs.send_message(QueueUrl=queues.urls[Channel.EMAIL], MessageBody="not a delivery")
    worker = queues.deliverer(Refusing(TransientFailure("unused")), max_attempts=6)

    assert until_dead_lettered(queues, worker) == ["not a delivery"]

"""The outbox from Postgres to SQS: the notifier writes deliveries (``dispatched =
false``) in its own transaction; after the commit this hands each to its channel's
queue and marks it dispatched. A crash between the send and the mark sends a copy
next time: the deliverer drops a copy of a finished delivery, and the delivery log
refuses to start one already being sent (``PostgresDeliveryLog.start_attempts``).

A retry never comes back here: the deliverer hides the same message again
(``SqsDeliveryQueue.retry``). An operator's resend does (``resend`` clears
``dispatched``)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from commands.notifications.ports import TransientFailure
from domain.notifications import Channel
from infra.amazon.sqs_queue import BATCH, sqs_call

if TYPE_CHECKING:
    from types_boto3_sqs.client import SQSClient

log = logging.getLogger(__name__)

MAX_DELAY_SECONDS = 900
"""SQS delays a message 15 minutes at most; a later delivery (quiet hours) is
re-offered by the deliverer until it is due."""


class SqsDispatcher:
    def __init__(
        self, pool: ConnectionPool[Any], client: SQSClient, queue_urls: Mapping[Channel, str]
    ) -> None:
        self._pool = pool
        self._client = client
        self._urls = {channel.value: url for channel, url in queue_urls.items()}

    def dispatch_once(self, limit: int = 100) -> int:
        """Hand up to ``limit`` undispatched deliveries to SQS; returns how many went."""
        with self._pool.connection() as conn, conn.transaction():
            # Locked until the mark commits: another dispatcher skips them. Undispatched
            # and already sending: left by the embedded mode's queue before a switch.
            rows = conn.execute(
                "SELECT id, channel, greatest(0, least(%s, "
                "ceil(extract(epoch FROM not_before - now()))))::int "
                "FROM notify.deliveries WHERE NOT dispatched "
                "AND state IN ('queued', 'sending', 'retrying') AND channel = ANY(%s) "
                "ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
                (MAX_DELAY_SECONDS, list(self._urls), limit),
                prepare=True,
            ).fetchall()
            by_channel: dict[str, list[tuple[UUID, int]]] = defaultdict(list)
            for delivery_id, channel, delay in rows:
                by_channel[channel].append((delivery_id, delay))
            sent: list[UUID] = []
            unavailable: TransientFailure | None = None
            try:
                for channel, deliveries in by_channel.items():
                    for start in range(0, len(deliveries), BATCH):
                        sent += self._send(self._urls[channel], deliveries[start : start + BATCH])
            except TransientFailure as error:  # mark what went, so it is not sent twice
                unavailable = error
            conn.execute(
                "UPDATE notify.deliveries SET dispatched = true WHERE id = ANY(%s)", (sent,)
            )
        if unavailable is not None:
            raise unavailable
        return len(sent)

    def _send(self, url: str, deliveries: list[tuple[UUID, int]]) -> list[UUID]:
        with sqs_call():
            answer = self._client.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(delivery_id), "MessageBody": str(delivery_id), "DelaySeconds": delay}
                    for delivery_id, delay in deliveries
                ],
            )
        for failure in answer.get("Failed", []):  # left undispatched: tried again next time
            log.warning("SQS refused delivery %s: %s", failure["Id"], failure.get("Message"))
        return [UUID(ok["Id"]) for ok in answer.get("Successful", [])]

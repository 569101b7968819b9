"""The scaled mode's delivery queue: one Amazon SQS queue per channel (so a channel
that is slow or failing never holds back the others), each with a redrive policy to
a dead-letter queue (infra/aws/notifications.tf). A message's body is a delivery
id; Postgres keeps the delivery's state, so a message is only a reminder to look.
The dispatcher (``infra.amazon.sqs_dispatch``) puts them there."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from commands.notifications.ports import Job, TransientFailure
from domain.notifications import Channel

if TYPE_CHECKING:
    from types_boto3_sqs.client import SQSClient

log = logging.getLogger(__name__)

VISIBILITY_SECONDS = 60
"""How long a received message stays hidden: the embedded queue's lease."""
MAX_VISIBILITY_SECONDS = 12 * 3600 - 300
"""SQS refuses a visibility beyond 12 hours from the receive: keep a margin for the
time the batch took."""
MAX_WAIT_SECONDS = 20  # SQS's longest long poll
BATCH = 10  # SQS's most messages per receive, send or delete call

_THROTTLED = {  # SQS's own throttling codes come with a 400
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "KmsThrottled",
    "OverLimit",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
}
_NOT_IN_FLIGHT = {"MessageNotInflight", "ReceiptHandleIsInvalid"}


@contextmanager
def sqs_call() -> Iterator[None]:
    """Throttling, a 5xx or a lost connection become ``TransientFailure``: the
    dependency is away, the work is not at fault. Any other refusal (a missing queue,
    no permission) is a fault of the set-up, not of a delivery, so it stays the
    ``ClientError`` (``infra.amazon.errors`` makes it a delivery's ``PermanentFailure``)."""
    try:
        yield
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status >= 500 or status == 429 or _code(error) in _THROTTLED:
            raise TransientFailure(f"SQS: {error}") from error
        raise
    except (ConnectionError, HTTPClientError) as error:
        raise TransientFailure(f"SQS: {error}") from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class SqsJob(Job):
    queue_url: str = ""
    """Where the message came from: ``finish`` and ``retry`` get only the job."""


class SqsDeliveryQueue:
    def __init__(
        self,
        client: SQSClient,
        queue_urls: Mapping[Channel, str],
        *,
        visibility_seconds: int = VISIBILITY_SECONDS,
    ) -> None:
        self._client = client
        self._urls = dict(queue_urls)
        self._visibility = visibility_seconds
        self._lock = threading.Lock()  # each channel's loop is a thread of its own
        self._finished: dict[str, list[str]] = {}
        """Receipts to delete, by queue: deleted ten at a time, or before the next
        take of that queue (the deliverer finishes a batch one job at a time)."""

    def take(self, channel: Channel, limit: int, wait_seconds: float) -> list[Job]:
        url = self._urls[channel]
        self._flush(url)
        jobs: dict[UUID, Job] = {}
        copies: list[str] = []
        wait = max(0, min(MAX_WAIT_SECONDS, int(wait_seconds)))
        while len(jobs) < limit:
            with sqs_call():
                messages = self._client.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(BATCH, limit - len(jobs)),
                    WaitTimeSeconds=wait,
                    VisibilityTimeout=self._visibility,
                ).get("Messages", [])
            if not messages:
                break
            wait = 0  # something came: fill the batch with what is there, no more waiting
            for message in messages:
                try:
                    delivery_id = UUID(message["Body"])
                except ValueError:  # not ours: left for the dead-letter queue
                    log.warning("SQS message %s is not a delivery id", message["MessageId"])
                    continue
                if delivery_id in jobs:  # the dispatcher's copy: one delivery, one job
                    copies.append(message["ReceiptHandle"])
                else:
                    jobs[delivery_id] = SqsJob(delivery_id, message["ReceiptHandle"], url)
        if copies:
            self._delete(url, copies)
        return list(jobs.values())

    def finish(self, job: Job) -> None:
        url = _url_of(job)
        with self._lock:
            receipts = self._finished.setdefault(url, [])
            receipts.append(job.receipt)
            full = len(receipts) >= BATCH
        if full:
            self._flush(url)

    def retry(self, job: Job, delay_seconds: float) -> None:
        visibility = min(MAX_VISIBILITY_SECONDS, max(0, math.ceil(delay_seconds)))
        try:
            with sqs_call():
                self._client.change_message_visibility(
                    QueueUrl=_url_of(job), ReceiptHandle=job.receipt, VisibilityTimeout=visibility
                )
        except ClientError as error:
            if _code(error) not in _NOT_IN_FLIGHT:
                raise
            # Visible again already: whoever takes it next re-offers it until not_before.
            log.info("delivery %s: message no longer in flight (%s)", job.delivery_id, error)

    def depth(self) -> dict[Channel, int]:
        found = dict.fromkeys(Channel, 0)
        for channel, url in self._urls.items():
            self._flush(url)
            with sqs_call():
                counts = self._client.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed",
                    ],
                )["Attributes"]
            found[channel] = sum(int(n) for n in counts.values())
        return found

    def close(self) -> None:
        for url in self._urls.values():
            self._flush(url)

    def _flush(self, url: str) -> None:
        with self._lock:
            receipts = self._finished.pop(url, [])
        if receipts:
            self._delete(url, receipts)

    def _delete(self, url: str, receipts: Sequence[str]) -> None:
        for start in range(0, len(receipts), BATCH):
            chunk = receipts[start : start + BATCH]
            with sqs_call():
                failed = self._client.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)],
                ).get("Failed", [])
            for failure in failed:  # a stale receipt: the copy comes back and is dropped then
                log.warning("SQS delete failed: %s", failure.get("Message", failure["Code"]))


def _url_of(job: Job) -> str:
    if not isinstance(job, SqsJob):
        raise TypeError(f"not a job of this queue: {job!r}")
    return job.queue_url

"""Delivery: takes due deliveries of one channel off the queue, renders each in
its recipient's locale, records the intent, sends, and records the outcome.

- Intent before the send, outcome after it (``DeliveryLog``): a worker killed
  between the two leaves the delivery ``sending``; its lease runs out and the next
  worker sends it again. That one window is where a message can go out twice (no
  provider here offers idempotent sends), see docs/adr/0017-notifications.md. With a
  provider it is one message wide: each message is recorded before the next is sent.
- Transient failures (throttling, 5xx, timeouts) retry with exponential backoff and
  full jitter, up to ``max_attempts``; permanent ones, suppressed addresses and
  templates that cannot render fail at once; an erased recipient's never reach a
  provider (suppressed).
- Each channel has a worker loop of its own (``NotificationWorkers``), so a channel
  that is slow or failing never holds back the others."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from commands.notifications.outcomes import OutcomeEvents
from commands.notifications.ports import (
    BatchSender,
    DeliveryLog,
    DeliveryQueue,
    Job,
    Outcome,
    Outgoing,
    Pending,
    PermanentFailure,
    Sender,
    Suppressions,
    TransientFailure,
)
from commands.notifications.rendering import Renderer
from commands.ports import Clock
from domain.notifications import ERASED_CONTEXT, RULES, Category, Channel, undeliverable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    max_attempts: int = 6
    base_seconds: float = 2.0
    cap_seconds: float = 900.0

    def delay(self, attempt: int) -> float:
        """Full jitter (AWS's advice): uniform in [0, min(cap, base * 2^attempt))."""
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))  # noqa: S311


OutcomeListener = Callable[[Pending, Outcome], None]
"""Told each outcome once it is recorded (metrics)."""


class Deliverer:
    def __init__(
        self,
        channel: Channel,
        *,
        queue: DeliveryQueue,
        log: DeliveryLog,
        sender: Sender,
        renderer: Renderer,
        suppressions: Suppressions,
        clock: Clock,
        unsubscribe_headers: Callable[[str], Mapping[str, str]] | None = None,
        backoff: Backoff = Backoff(),
        batch: int = 500,
        on_outcome: OutcomeListener | None = None,
        outcome_events: OutcomeEvents | None = None,
    ) -> None:
        self.channel = channel
        self._queue = queue
        self._log = log
        self._sender = sender
        self._renderer = renderer
        self._suppressions = suppressions
        self._unsubscribe_headers = unsubscribe_headers
        self._clock = clock
        self._backoff = backoff
        self._batch = batch
        self._on_outcome = on_outcome
        self._outcome_events = outcome_events

    def run_once(self, wait_seconds: float = 1.0) -> int:
        """Take one batch and deliver it; returns how many deliveries were attempted."""
        jobs = self._queue.take(self.channel, self._batch, wait_seconds)
        if not jobs:
            return 0
        pending = {p.delivery_id: p for p in self._log.pending([j.delivery_id for j in jobs])}
        now = self._clock()
        due: list[tuple[Job, Pending]] = []
        for job in jobs:
            p = pending.get(job.delivery_id)
            if p is None:  # finished already: a copy of a queue message
                self._queue.finish(job)
            elif p.not_before > now:  # quiet hours (SQS can delay only 15 minutes)
                self._queue.retry(job, (p.not_before - now).total_seconds())
            else:
                due.append((job, p))
        if isinstance(self._sender, BatchSender):
            return self._deliver(due)
        # A provider is called once per message: each gets its intent, send and
        # outcome before the next, so a crash repeats at most the message in hand,
        # and one started late in a slow batch is not already past its guard.
        return sum(self._deliver([one]) for one in due)

    def _deliver(self, due: Sequence[tuple[Job, Pending]]) -> int:
        """Record the intent of ``due``, send them, record the outcomes; returns how
        many were attempted (a delivery another worker holds is left to it)."""
        if not due:
            return 0
        now = self._clock()
        attempts = self._log.start_attempts([p.delivery_id for _, p in due], now)
        started = [(job, p, attempts[p.delivery_id]) for job, p in due if p.delivery_id in attempts]
        outcomes = self._attempt_all([(p, attempt) for _, p, attempt in started])
        finished_at = self._clock()
        if self._outcome_events is not None:
            # Before the outcomes are marked: a crash between the two loses no event
            # (the delivery is attempted again, and its new outcome is recorded too).
            pairs = [(p, o) for (_, p, _), o in zip(started, outcomes, strict=True)]
            self._outcome_events.record(pairs, finished_at)
        self._log.record_outcomes(outcomes, finished_at)
        for (job, p, _), outcome in zip(started, outcomes, strict=True):
            if outcome.outcome == "retrying" and outcome.retry_at is not None:
                self._queue.retry(job, (outcome.retry_at - now).total_seconds())
            else:
                self._queue.finish(job)
            if self._on_outcome is not None:
                self._on_outcome(p, outcome)
        return len(outcomes)

    def _attempt_all(self, started: Sequence[tuple[Pending, int]]) -> list[Outcome]:
        """Each started delivery's outcome, in order: suppressed and unrenderable ones
        decided here, the rest sent (together, to a sender that takes a batch)."""
        outcomes: list[Outcome | None] = []
        sending: list[tuple[int, Pending, int, Outgoing]] = []
        suppressed = (
            self._suppressions.suppressed_among([p.address for p, _ in started])
            if self.channel is Channel.EMAIL and started
            else {}
        )
        for index, (p, attempt) in enumerate(started):
            prepared = self._prepare(p, attempt, suppressed)
            if isinstance(prepared, Outcome):
                outcomes.append(prepared)
            else:
                outcomes.append(None)
                sending.append((index, p, attempt, prepared))
        if isinstance(self._sender, BatchSender) and sending:
            for index, outcome in zip(
                (i for i, *_ in sending), self._send_batch(sending), strict=True
            ):
                outcomes[index] = outcome
        else:
            for index, p, attempt, outgoing in sending:
                outcomes[index] = self._send(p, attempt, outgoing)
        return [o for o in outcomes if o is not None]

    def _prepare(
        self, p: Pending, attempt: int, suppressed: Mapping[str, bool]
    ) -> Outgoing | Outcome:
        if undeliverable(p.address) or p.context == ERASED_CONTEXT:
            # An erased recipient's (ADR 0024): their address blanked, or what it was
            # to say (a resend of one that had failed) forgotten. No provider gets it.
            return Outcome(p.delivery_id, attempt, "suppressed", error="recipient erased")
        marketing = RULES[p.kind].category is Category.MARKETING
        marketing_only = suppressed.get(p.address.lower())
        if marketing_only is not None and (marketing or not marketing_only):
            return Outcome(
                p.delivery_id, attempt, "suppressed", error="address on the suppression list"
            )
        try:
            content = self._renderer.render(p.kind, p.channel, p.locale, p.context)
        except Exception as error:
            # Whatever an edited template raises (a syntax error, a missing value, a
            # filter given the wrong type: a TypeError), this one message cannot be
            # rendered: it fails alone, with the reason, instead of aborting the batch
            # after its intents were recorded (the batch then stuck "sending").
            log.exception("notification %s cannot be rendered", p.notification_id)
            return Outcome(p.delivery_id, attempt, "failed", error=f"template: {error}")
        unsubscribe = self._unsubscribe_headers
        return Outgoing(
            delivery_id=p.delivery_id,
            notification_id=p.notification_id,
            kind=p.kind,
            channel=p.channel,
            user_id=p.user_id,
            address=p.address,
            content=content,
            created_at=p.created_at,
            headers=unsubscribe(p.address) if marketing and unsubscribe else {},
        )

    def _send(self, p: Pending, attempt: int, outgoing: Outgoing) -> Outcome:
        try:
            message_id = self._sender.send(outgoing)
        except PermanentFailure as failure:
            return Outcome(p.delivery_id, attempt, "failed", error=failure.reason)
        except TransientFailure as failure:
            return self._retry(p, attempt, failure.reason)
        except Exception as error:
            log.exception("%s delivery %s failed unexpectedly", self.channel, p.delivery_id)
            return self._retry(p, attempt, f"{type(error).__name__}: {error}")
        return Outcome(p.delivery_id, attempt, "sent", provider_message_id=message_id)

    def _send_batch(self, sending: Sequence[tuple[int, Pending, int, Outgoing]]) -> list[Outcome]:
        """One call for the batch (the local adapters: one statement); a failure is
        every one's."""
        assert isinstance(self._sender, BatchSender)
        try:
            ids = self._sender.send_many([outgoing for *_, outgoing in sending])
        except Exception as error:
            log.exception("%s delivery of a batch failed", self.channel)
            reason = f"{type(error).__name__}: {error}"
            return [self._retry(p, attempt, reason) for _, p, attempt, _ in sending]
        return [
            Outcome(p.delivery_id, attempt, "sent", provider_message_id=message_id)
            for (_, p, attempt, _), message_id in zip(sending, ids, strict=True)
        ]

    def _retry(self, p: Pending, attempt: int, reason: str) -> Outcome:
        if attempt >= self._backoff.max_attempts:
            error = f"gave up after {attempt} attempts: {reason}"
            return Outcome(p.delivery_id, attempt, "failed", error=error)
        retry_at = self._clock() + timedelta(seconds=self._backoff.delay(attempt))
        return Outcome(p.delivery_id, attempt, "retrying", error=reason, retry_at=retry_at)


def deliver_all(deliverers: Sequence[Deliverer], wait_seconds: float = 0.0) -> int:
    """One pass of every channel (tests and the preview of a queue's backlog)."""
    return sum(d.run_once(wait_seconds) for d in deliverers)

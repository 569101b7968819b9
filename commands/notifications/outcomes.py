"""The notifications area's event store: each final delivery outcome as an event
(``domain.deliveries``), on a log of its own that the relay publishes like the
others, for audit and analytics (sent, failed and suppressed per channel and kind,
decision-to-send times). No address is on it: a provider's reason that quotes the
recipient's is recorded without it, as an event is never rewritten and an erasure
(ADR 0024) could not blank it there."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from eventsourcing.persistence import IntegrityError

from commands.application import ContextApplication
from commands.notifications.ports import Outcome, Pending
from domain.deliveries import FINAL_OUTCOMES, DeliveryOutcome


class NotificationsApplication(ContextApplication):
    name = "notifications"


class OutcomeEvents:
    def __init__(self, app: NotificationsApplication) -> None:
        self._app = app

    def record(self, finished: Sequence[tuple[Pending, Outcome]], at: datetime) -> None:
        """One save for the batch's final outcomes; an outcome recorded already (a
        batch retried after a crash before its outcomes were marked) is kept once."""
        outcomes = [
            DeliveryOutcome(
                delivery_id=p.delivery_id,
                attempt=o.attempt,
                notification_id=p.notification_id,
                kind=p.kind.value,
                channel=p.channel.value,
                user_id=p.user_id,
                outcome=o.outcome,
                provider_message_id=o.provider_message_id,
                error=_without_address(o.error, p.address),
                decided_at=p.created_at,
                finished_at=at,
            )
            for p, o in finished
            if o.outcome in FINAL_OUTCOMES
        ]
        if not outcomes:
            return
        try:
            self._app.save(*outcomes)
        except IntegrityError:  # some were recorded before: the others one by one
            for outcome in outcomes:
                if outcome.id not in self._app.repository:
                    self._app.save(outcome)


def _without_address(error: str | None, address: str) -> str | None:
    if error is None or not address:
        return error
    return re.sub(re.escape(address), "<recipient>", error, flags=re.IGNORECASE)

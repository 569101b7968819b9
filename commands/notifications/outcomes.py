"""The notifications area's event store: each final delivery outcome as an event
(``domain.deliveries``), on a log of its own that the relay publishes like the
others, for audit and analytics (sent, failed and suppressed per channel and kind,
decision-to-send times)."""

from __future__ import annotations

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
                error=o.error,
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

"""An operator's resend of a failed delivery: queued again as if just decided (the
same delivery, its attempts counting on), so the log keeps one row per message."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.errors import UnknownEntity
from domain.refusals import Refused


class Resends(Protocol):
    def resend(self, delivery_id: UUID, at: datetime) -> bool:
        """Queue a failed delivery again; False unless it had failed."""

    def state_of(self, delivery_id: UUID) -> str | None:
        """The delivery's state; None if there is no such delivery."""


class NotFailed(Refused):
    """Only a failed delivery is sent again: one still on its way would go twice, and
    a sent or suppressed one is done with."""

    status = 409
    code = "delivery-not-failed"


def resend(deliveries: Resends, delivery_id: UUID, at: datetime) -> None:
    """Queue ``delivery_id`` again, or refuse: 404 if unknown, 409 if not failed."""
    if deliveries.resend(delivery_id, at):
        return
    # Asked only after a refusal, to say why: the resend itself is the one check.
    state = deliveries.state_of(delivery_id)
    if state is None:
        raise UnknownEntity("no such delivery")
    raise NotFailed(f"only a failed delivery is sent again; this one is {state}")

"""What the notifications area's endpoints need, provided by the composition root
through ``app.state.notifications`` (``infra.wiring.notifications``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import Depends, Request

from commands.notifications.feedback import SnsMessages
from commands.notifications.ports import DeviceRegistry, Suppressions
from commands.notifications.resending import Resends
from commands.notifications.tickets import StreamTickets
from commands.notifications.unsubscribe import UnsubscribeSigner
from commands.ports import Clock
from projections.notifications.inbox import Inbox


@dataclass(frozen=True)
class NotificationsServices:
    clock: Clock
    inbox: Inbox
    tickets: StreamTickets
    devices: DeviceRegistry
    suppressions: Suppressions
    signer: UnsubscribeSigner
    """Signs and reads the one-click unsubscribe links."""
    sns: SnsMessages
    """Checks the signature of SES feedback as SNS delivers it."""
    resends: Resends
    new_id: Callable[[], UUID] = field(default=uuid4)


async def _services(request: Request) -> NotificationsServices:
    services: NotificationsServices = request.app.state.notifications
    return services


Services = Annotated[NotificationsServices, Depends(_services)]

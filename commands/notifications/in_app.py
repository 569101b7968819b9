"""The in-app channel: a delivery is a row in the user's inbox."""

from __future__ import annotations

from collections.abc import Sequence

from commands.notifications.ports import Outgoing, PermanentFailure
from projections.notifications.inbox import Inbox, InboxItem


class InAppSender:
    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox

    def send(self, outgoing: Outgoing) -> str:
        item = _item(outgoing)
        self._inbox.put(item)  # a second delivery of the same one changes nothing
        return item.key

    def send_many(self, outgoings: Sequence[Outgoing]) -> list[str]:
        items = [_item(outgoing) for outgoing in outgoings]
        self._inbox.put_many(items)
        return [item.key for item in items]


def _item(outgoing: Outgoing) -> InboxItem:
    if outgoing.user_id is None:
        raise PermanentFailure("an in-app notification needs a user")
    return InboxItem(
        user_id=outgoing.user_id,
        notification_id=outgoing.notification_id,
        kind=outgoing.kind.value,
        title=outgoing.content.subject,
        body=outgoing.content.text,
        link=outgoing.content.link,
        created_at=outgoing.created_at,
    )

"""The one MIME message every email channel sends (SMTP, and SES as raw MIME so the
List-Unsubscribe headers survive): text, with an html alternative when there is one."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

from commands.notifications.ports import Outgoing, PermanentFailure


def build_message(outgoing: Outgoing, sender: str) -> EmailMessage:
    content = outgoing.content
    message = EmailMessage()
    try:
        message["From"] = sender
        message["To"] = outgoing.address
        message["Subject"] = content.subject
        for name, value in outgoing.headers.items():
            message[name] = value
    except ValueError as error:  # a CR or LF in a header: never let it inject headers
        raise PermanentFailure(f"invalid header: {error}") from error
    message["Date"] = formatdate(usegmt=True)
    # from the delivery, so a retried send carries the same Message-ID and a
    # receiving system can tell it is a copy
    message["Message-ID"] = f"<{outgoing.delivery_id}@eventshop>"
    message.set_content(content.text)
    if content.html:
        message.add_alternative(content.html, subtype="html")
    return message

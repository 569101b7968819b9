"""A real SMTP server (aiosmtpd) on a free loopback port that keeps what it is given
and refuses the recipients it is told to, as a server refuses an unknown mailbox."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.server import free_port


@dataclass
class SmtpCapture:
    port: int = 0
    refused: set[str] = field(default_factory=set)
    """Recipients answered with ``550 5.1.1`` at RCPT (a hard bounce)."""
    deferred: set[str] = field(default_factory=set)
    """Recipients answered with ``451 4.3.0`` at RCPT (try again later)."""
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower() in self.refused:
            return "550 5.1.1 no such user"
        if address.lower() in self.deferred:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = cast(bytes, envelope.original_content)
        self.messages.append(message_from_bytes(raw, policy=policy.default))
        return "250 Message accepted"


@contextmanager
def smtp_server() -> Iterator[SmtpCapture]:
    # Controller(port=0) cannot check its own readiness: it connects to the port given
    capture = SmtpCapture(port=free_port())
    controller = Controller(capture, hostname="127.0.0.1", port=capture.port)
    controller.start()
    try:
        yield capture
    finally:
        controller.stop()

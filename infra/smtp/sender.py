"""Email over SMTP, one connection per message: a refused recipient fails the
delivery for good, a 4xx or an unreachable server is retried."""

from __future__ import annotations

import smtplib
import ssl

from commands.notifications.ports import Outgoing, PermanentFailure, TransientFailure
from infra.smtp.mime import build_message


class SmtpEmailSender:
    def __init__(
        self,
        host: str,
        port: int,
        sender_address: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender_address
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    def send(self, outgoing: Outgoing) -> str:
        message = build_message(outgoing, self._sender)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._username is not None:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(message, to_addrs=[outgoing.address])
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise _failure(code, reply) from error
        except smtplib.SMTPAuthenticationError as error:
            # our credentials, not this message: retried (bounded) while someone fixes them
            raise TransientFailure(f"SMTP login refused: {error.smtp_code}") from error
        except smtplib.SMTPResponseException as error:
            raise _failure(error.smtp_code, error.smtp_error) from error
        except (smtplib.SMTPException, OSError) as error:  # refused, reset, timed out
            raise TransientFailure(f"SMTP: {type(error).__name__}: {error}") from error
        return str(message["Message-ID"])


def _failure(code: int, reply: bytes | str) -> PermanentFailure | TransientFailure:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    reason = f"SMTP {code} {text}"
    return PermanentFailure(reason) if code >= 500 else TransientFailure(reason)

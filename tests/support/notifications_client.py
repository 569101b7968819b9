"""Notifications as their recipients get them, over the real channels: mail read
back from the SMTP capture (tests/support/smtp_server.py), accounts verified
through it, the live inbox read as an ``EventSource`` reads it, SMS and mobile push
read back from moto (tests/support/moto_server.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx

from tests.support import moto_server
from tests.support.api import bearer
from tests.support.polling import eventually
from tests.support.server import MAIL_SECONDS, STARTUP_SECONDS, VERIFY_SUBJECT
from tests.support.users_client import STRONG_PASSWORD, Account, login, register, unique_email

if TYPE_CHECKING:
    from tests.support.server import Server
    from tests.support.smtp_server import SmtpCapture

T = TypeVar("T")
STREAM = "/me/notifications/stream"
_TOKEN_IN_MAIL = re.compile(r"Or send this token to the API: (\S+)")


# --- mail through SMTP -----------------------------------------------------------------


def mails_to(
    smtp: SmtpCapture, to: str, subject: str, count: int = 1, timeout: float = MAIL_SECONDS
) -> list[EmailMessage]:
    """The messages with ``subject`` the SMTP server took for ``to`` (oldest first),
    once at least ``count`` have arrived."""

    def arrived() -> list[EmailMessage] | None:
        found = [
            m
            for m in list(smtp.messages)
            if str(m["To"]).lower() == to.lower() and str(m["Subject"]) == subject
        ]
        return found if len(found) >= count else None

    return eventually(arrived, f"{count} {subject!r} mail to {to} over SMTP", timeout=timeout)


def text_of(message: EmailMessage) -> str:
    """The plain-text part, as a mail client shows it (the wire's CRLF as newlines)."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, message
    assert isinstance(part, EmailMessage)
    return str(part.get_content()).replace("\r\n", "\n")


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, message
    assert isinstance(part, EmailMessage)
    return str(part.get_content()).replace("\r\n", "\n")


def link_in(text: str, base_url: str, path: str) -> str:
    """The one link to ``base_url`` + ``path`` in a mail's text."""
    links = re.findall(rf"^({re.escape(base_url + path)}\?\S+)$", text, re.MULTILINE)
    assert len(links) == 1, text
    return str(links[0])


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def mailed_token(smtp: SmtpCapture, to: str, subject: str = VERIFY_SUBJECT) -> str:
    match = _TOKEN_IN_MAIL.search(text_of(mails_to(smtp, to, subject)[-1]))
    assert match is not None
    return match.group(1)


def logged_in(client: httpx.Client, email: str, password: str = STRONG_PASSWORD) -> dict[str, Any]:
    """The login's tokens, once the session works (login waits for the access view
    a bounded time only)."""
    answer = login(client, email, password)
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    headers = bearer(tokens["access_token"])

    def me() -> httpx.Response | None:
        found = client.get("/users/me", headers=headers)
        return None if found.status_code == 401 else found

    found = eventually(me, f"the session of {email} to work", timeout=STARTUP_SECONDS)
    assert found.status_code == 200, found.text
    return tokens


def smtp_verified_account(
    server: Server, client: httpx.Client, smtp: SmtpCapture, label: str, role: str | None = None
) -> Account:
    """A registered, verified (the token from the SMTP mail, sent to the API) and
    logged-in account, granted ``role`` by the CLI-made admin if given."""
    email, name = unique_email(label), f"{label.capitalize()} Tester"
    registered = register(client, email, STRONG_PASSWORD, name)
    assert registered.status_code == 201, registered.text
    verified = client.post("/auth/verify-email", json={"token": mailed_token(smtp, email)})
    assert verified.status_code == 200, verified.text
    account_id = str(registered.json()["id"])
    if role is not None:
        granted = client.post(
            f"/admin/users/{account_id}/roles",
            json={"role": role},
            headers=server.admin_headers(client),
        )
        assert granted.status_code == 200, granted.text
    tokens = logged_in(client, email)
    return Account(
        account_id,
        email,
        STRONG_PASSWORD,
        name,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


def at_least(count: int, fetch: Callable[[], list[T]]) -> Callable[[], list[T] | None]:
    """A check for ``eventually``: what ``fetch`` gives, once it holds ``count``."""

    def check() -> list[T] | None:
        found = fetch()
        return found if len(found) >= count else None

    return check


# --- the live inbox (Server-Sent Events) -------------------------------------------------


@dataclass
class SseEvent:
    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    comment: str | None = None

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads("\n".join(self.data))
        return body


def sse_events(lines: Iterator[str]) -> Iterator[SseEvent]:
    """The stream's messages and comments, as an SSE client parses them."""
    current = SseEvent()
    for line in lines:
        if line == "":
            if current.comment is not None or current.data or current.id:
                yield current
            current = SseEvent()
        elif line.startswith(":"):
            current.comment = line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                current.data.append(value)
            elif name == "id":
                current.id = value
            elif name == "event":
                current.event = value


@dataclass
class LiveInbox:
    """An open stream, read on the test's thread: a read waits for the next bytes,
    which come at the latest with the next heartbeat (15 s in ``shop run``)."""

    received: Iterator[SseEvent]
    seen: list[SseEvent] = field(default_factory=list)
    """Every notification message read so far."""

    def notifications(self, count: int, within: float = 30.0) -> list[SseEvent]:
        """The next ``count`` notification messages (pings skipped), or fail."""
        deadline = time.monotonic() + within
        found: list[SseEvent] = []
        for event in self.received:
            if event.event == "notification":
                found.append(event)
                self.seen.append(event)
                if len(found) == count:
                    return found
            assert time.monotonic() < deadline, f"{len(found)} of {count} notifications: {found}"
        raise AssertionError("the stream ended")

    def nothing_more(self) -> None:
        """No notification until the stream's read timeout: opened with a short one."""
        try:
            for event in self.received:
                assert event.event != "notification", f"unexpected {event}"
        except httpx.ReadTimeout:
            return
        raise AssertionError("the stream ended")


def stream_ticket(client: httpx.Client, headers: dict[str, str]) -> str:
    answer = client.post("/me/notifications/stream-tickets", headers=headers)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["ticket"])


@contextmanager
def live_inbox(
    base_url: str,
    ticket: str,
    last_event_id: str | None = None,
    *,
    in_query: bool = False,
    read_timeout: float = 20.0,
) -> Iterator[LiveInbox]:
    """``GET /me/notifications/stream`` with ``ticket``, resuming after
    ``last_event_id`` (the Last-Event-ID header, or ``?last_event_id=`` as a new
    ``EventSource`` must pass it); closed when the block ends."""
    params = {"ticket": ticket}
    headers: dict[str, str] = {}
    if last_event_id is not None and in_query:
        params["last_event_id"] = last_event_id
    elif last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    timeout = httpx.Timeout(10.0, read=read_timeout)
    with (
        httpx.Client(base_url=base_url, timeout=timeout) as client,
        client.stream("GET", STREAM, params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield LiveInbox(sse_events(response.iter_lines()))


def inbox_page(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The user's inbox, newest first (GET /me/notifications)."""
    answer = client.get("/me/notifications", headers=headers, params={"limit": 100})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


# --- SNS through moto ---------------------------------------------------------------------


def sms_to(moto_url: str, number: str) -> list[dict[str, Any]]:
    """The SMS moto's SNS 'sent' to ``number``."""
    return [m for m in moto_server.sent(moto_url, "sns", "SMS") if m["phone_number"] == number]


def pushed_to(moto_url: str, token: str) -> list[dict[str, Any]]:
    """The messages published to the platform endpoints of a device ``token`` (each
    the JSON message structure: ``default``, ``GCM``, ``APNS``...)."""
    endpoints = moto_server.sent(moto_url, "sns", "PlatformEndpoint")
    return [
        json.loads(message)
        for endpoint in endpoints
        if endpoint["token"] == token
        for message in endpoint["messages"].values()
    ]


# --- processes a ``shop serve all`` starts ---------------------------------------------------


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux: /proc), e.g. the relay and the worker of
    ``shop serve all``."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def gone(pid: int) -> bool:
    """Ended (or ended and not yet reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # exited, not yet reaped


def stop_processes(pids: list[int], timeout: float = 20.0) -> None:
    """SIGTERM to each of ``pids``; SIGKILL to those still running after ``timeout``."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if not gone(pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

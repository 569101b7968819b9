"""One-click unsubscribe, without a server: the signed token (only our secret makes
one, for exactly one address), the RFC 8058 headers, the one-click body, and that
the email ``Deliverer`` puts the headers on marketing mail only."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.notifications.delivery import Deliverer
from commands.notifications.http.unsubscribe import is_one_click
from commands.notifications.ports import Content, Job, Outcome, Outgoing, Pending
from commands.notifications.unsubscribe import UnsubscribeSigner, unsubscribe_headers
from domain.errors import InvalidToken
from domain.notifications import RULES, Category, Channel, Kind

SECRET = "unit-secret-" + "y" * 40
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
signer = UnsubscribeSigner(SECRET)
addresses = st.emails().map(str)


@given(address=addresses)
def test_a_token_names_its_address(address: str) -> None:
    token = signer.token(address)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert signer.address(token) == address.strip().lower()


@given(address=addresses, other=addresses)
def test_a_token_cannot_be_moved_to_another_address(address: str, other: str) -> None:
    if address.lower() == other.lower():
        return
    mac = signer.token(address).split(".")[1]
    moved = signer.token(other).split(".")[0] + "." + mac
    with pytest.raises(InvalidToken):
        signer.address(moved)


def test_only_our_secret_makes_a_token() -> None:
    forged = UnsubscribeSigner("another-secret-" + "z" * 40).token("ann@example.com")
    with pytest.raises(InvalidToken):
        signer.address(forged)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dot",
        ".",
        "YW5uQGV4YW1wbGUuY29t.",
        ".c2lnbmF0dXJl",
        "YW5uQGV4YW1wbGUuY29t.c2lnbmF0dXJl",  # a MAC of the wrong bytes
        "not base64!.abc",
        "//8.abc",  # not UTF-8 once decoded
        "a" * 700 + ".b",
    ],
)
def test_a_malformed_token_is_invalid(token: str) -> None:
    with pytest.raises(InvalidToken):
        signer.address(token)


def test_a_token_with_its_mac_altered_is_invalid() -> None:
    encoded, mac = signer.token("ann@example.com").split(".")
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    with pytest.raises(InvalidToken):
        signer.address(f"{encoded}.{flipped}")


def test_the_headers_are_rfc_8058s() -> None:
    headers = unsubscribe_headers("https://shop.example.com/", signer)("Ann@Example.com")
    assert set(headers) == {"List-Unsubscribe", "List-Unsubscribe-Post"}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.fullmatch(r"<(https://[^>]+)>", headers["List-Unsubscribe"])
    assert link is not None
    url = urlsplit(link.group(1))
    assert (url.netloc, url.path) == ("shop.example.com", "/notifications/unsubscribe")
    (token,) = parse_qs(url.query)["token"]
    assert signer.address(token) == "ann@example.com"


@pytest.mark.parametrize(
    ("content_type", "body", "one_click"),
    [
        ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click", True),
        ("application/x-www-form-urlencoded; charset=utf-8", b"List-Unsubscribe=One-Click", True),
        ("application/x-www-form-urlencoded", b"List-Unsubscribe=Yes", False),
        ("application/x-www-form-urlencoded", b"", False),
        ("application/x-www-form-urlencoded", b"\xff\xfe", False),
        (
            "multipart/form-data; boundary=b0undary",
            b'--b0undary\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            b"One-Click\r\n--b0undary--\r\n",
            True,
        ),
        (
            "multipart/form-data; boundary=b0undary",
            b'--b0undary\r\nContent-Disposition: form-data; name="Other"\r\n\r\n'
            b"One-Click\r\n--b0undary--\r\n",
            False,
        ),
        ("multipart/form-data", b"List-Unsubscribe=One-Click", False),
        ("application/json", b'{"List-Unsubscribe": "One-Click"}', False),
        ("", b"List-Unsubscribe=One-Click", False),
    ],
)
def test_the_one_click_body(content_type: str, body: bytes, one_click: bool) -> None:
    assert is_one_click(content_type, body) is one_click


# --- the Deliverer ---------------------------------------------------------------


class OneBatch:
    """A queue holding one batch of deliveries, and their log."""

    def __init__(self, pending: Sequence[Pending]) -> None:
        self._pending = {p.delivery_id: p for p in pending}
        self._jobs = [Job(p.delivery_id, str(p.delivery_id)) for p in pending]
        self.outcomes: list[Outcome] = []

    def take(self, channel: Channel, limit: int, wait_seconds: float) -> list[Job]:
        jobs, self._jobs = self._jobs, []
        return jobs

    def finish(self, job: Job) -> None:
        pass

    def retry(self, job: Job, delay_seconds: float) -> None:
        raise AssertionError("nothing fails here")

    def depth(self) -> dict[Channel, int]:
        return {}

    def pending(self, delivery_ids: Sequence[UUID]) -> list[Pending]:
        return [self._pending[i] for i in delivery_ids]

    def start_attempts(self, delivery_ids: Sequence[UUID], at: datetime) -> dict[UUID, int]:
        return dict.fromkeys(delivery_ids, 1)

    def record_outcomes(self, outcomes: Sequence[Outcome], at: datetime) -> None:
        self.outcomes.extend(outcomes)


class Recorder:
    def __init__(self) -> None:
        self.sent: dict[Kind, Outgoing] = {}

    def send(self, outgoing: Outgoing) -> str:
        self.sent[outgoing.kind] = outgoing
        return f"msg-{len(self.sent)}"


class StandInRenderer:
    def render(
        self, kind: Kind, channel: Channel, locale: str, context: Mapping[str, Any]
    ) -> Content:
        return Content(subject=str(kind), text="hello", html="<p>hello</p>")


class NoSuppressions:
    def suppressed_among(self, addresses: Sequence[str]) -> dict[str, bool]:
        return {}

    def suppress(self, address: str, reason: str, marketing_only: bool) -> None:
        raise AssertionError("the deliverer never suppresses")


def pending(kind: Kind, address: str) -> Pending:
    return Pending(
        delivery_id=uuid4(),
        notification_id=uuid4(),
        kind=kind,
        channel=Channel.EMAIL,
        user_id=uuid4(),
        address=address,
        locale="en",
        context={},
        state="queued",
        attempts=0,
        not_before=NOW,
        created_at=NOW,
    )


def test_the_deliverer_puts_the_headers_on_marketing_mail_only() -> None:
    email_kinds = [kind for kind, rules in RULES.items() if Channel.EMAIL in rules.channels]
    marketing = {k for k in email_kinds if RULES[k].category is Category.MARKETING}
    assert marketing and set(email_kinds) - marketing  # both sorts are covered
    batch = OneBatch([pending(kind, f"{kind}@example.com") for kind in email_kinds])
    sender = Recorder()
    renderer: Any = StandInRenderer()
    deliverer = Deliverer(
        Channel.EMAIL,
        queue=batch,
        log=batch,
        sender=sender,
        renderer=renderer,
        suppressions=NoSuppressions(),
        clock=lambda: NOW,
        unsubscribe_headers=unsubscribe_headers("https://shop.example.com", signer),
    )
    assert deliverer.run_once(wait_seconds=0) == len(email_kinds)
    assert {o.outcome for o in batch.outcomes} == {"sent"}
    for kind, outgoing in sender.sent.items():
        if kind in marketing:
            assert outgoing.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            (token,) = re.findall(r"token=([^>&]+)", outgoing.headers["List-Unsubscribe"])
            assert signer.address(token) == outgoing.address
        else:
            assert dict(outgoing.headers) == {}, kind  # account and order mail: none

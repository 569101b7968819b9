"""A ``shop run`` that trusts no proxy (the default): a client's own
``X-Forwarded-For`` and ``X-Forwarded-Proto`` change nothing, and slow clients do not
hold up others."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator
from uuid import uuid4

import httpx
import pytest

from tests.support.api import refused
from tests.support.server import Server, running_server

pytestmark = pytest.mark.e2e

READS = 10


@pytest.fixture(scope="module")
def untrusting(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The in-process limiters (no Redis), so that no other process counts here."""
    settings = {"SHOP_RATE_LIMIT_READS": str(READS), "SHOP_RATE_LIMIT_WINDOW": "600"}
    with running_server(make_database(), tmp_path_factory.mktemp("untrusting"), settings) as s:
        yield s


def spoofed() -> dict[str, str]:
    """A new made-up client address each time, as an attacker rotating them sends."""
    return {"X-Forwarded-For": f"203.0.{secrets.randbelow(256)}.{secrets.randbelow(256)}"}


def test_rotating_forwarded_for_does_not_escape_the_login_limit(untrusting: Server) -> None:
    """The attack that got 70 failed logins without a 429: every attempt from the
    same peer is counted against it (50 a minute), whatever it says it forwards."""
    with untrusting.client() as client:
        statuses = [
            client.post(
                "/auth/login",
                json={"email": f"nobody-{uuid4().hex[:8]}@example.com", "password": "wrong-guess"},
                headers=spoofed(),
            ).status_code
            for _ in range(70)
        ]
    assert 429 not in statuses[:50], statuses
    assert statuses[50:] == [429] * 20, statuses


def test_rotating_forwarded_for_does_not_escape_the_route_limit(untrusting: Server) -> None:
    with untrusting.client() as client:
        answers = [client.get("/categories", headers=spoofed()) for _ in range(READS + 1)]
    assert [a.status_code for a in answers[:READS]] == [200] * READS
    assert [a.headers["RateLimit-Remaining"] for a in answers[:READS]] == [
        str(n) for n in reversed(range(READS))
    ]
    refused(answers[READS], 429, "rate-limited")


def test_a_forwarded_proto_from_an_untrusted_peer_gets_no_hsts(untrusting: Server) -> None:
    with untrusting.client() as client:
        answer = client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in answer.headers


def test_slow_clients_do_not_hold_up_the_others(untrusting: Server) -> None:
    """A slowloris: connections that send half a request's headers and stop. uvicorn
    bounds neither how long headers take nor (here) how many connections wait, so in
    production the ALB does (it forwards only whole requests); what must hold here
    is that the one event loop keeps answering everyone else meanwhile."""
    address = ("127.0.0.1", int(untrusting.base_url.rsplit(":", 1)[1]))
    slow = [socket.create_connection(address, timeout=5) for _ in range(50)]
    try:
        for sock in slow:
            sock.sendall(b"GET /categories HTTP/1.1\r\nHost: shop\r\nX-Slow: ")
        started = time.monotonic()
        with httpx.Client(base_url=untrusting.base_url, timeout=5.0) as client:
            answers = [client.get("/health") for _ in range(5)]
        elapsed = time.monotonic() - started
        for sock in slow:  # still trickling: a byte more each
            sock.sendall(b"x")
    finally:
        for sock in slow:
            sock.close()
    assert [a.status_code for a in answers] == [200] * 5
    assert elapsed < 3.0, elapsed

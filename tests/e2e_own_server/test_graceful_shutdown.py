"""SIGTERM to a ``shop run`` serving a steady load of registrations: the requests in
flight are answered, the process exits 0 within its graceful bound, and after a
restart on the same database every registration that was acknowledged (2xx) is
there and projected; every request refused meanwhile got a clean problem or a
connection error, never a 2xx that was lost. (A database restart while serving:
``test_database_outage.py``.)"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from infra.entrypoints.cli import GRACEFUL_SHUTDOWN_SECONDS
from tests.support.api import CONSISTENCY
from tests.support.polling import eventually
from tests.support.server import free_port, launch, start_server, stop
from tests.support.users_client import STRONG_PASSWORD, unique_email

pytestmark = pytest.mark.e2e

WRITERS = 4
STOP_BOUND = GRACEFUL_SHUTDOWN_SECONDS + 10
"""In-flight requests get the graceful bound; then the runners and pools close."""


@dataclass
class Acknowledged:
    id: str
    email: str
    token: str
    sent: float
    answered: float


@dataclass
class Writers:
    """Threads registering accounts (each with its own Idempotency-Key) until told to
    stop; what was acknowledged, refused (with what) or cut."""

    base_url: str
    stopping: threading.Event = field(default_factory=threading.Event)
    acknowledged: list[Acknowledged] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    cut: int = 0
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._write) for _ in range(WRITERS)]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)

    def _write(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self.stopping.is_set():
                email = unique_email("sigterm")
                body = {"email": email, "password": STRONG_PASSWORD, "name": "Sigterm Tester"}
                key = {"Idempotency-Key": uuid.uuid4().hex}
                sent = time.monotonic()
                try:
                    answer = client.post("/auth/register", json=body, headers=key)
                except httpx.TransportError:
                    self.cut += 1
                    time.sleep(0.05)
                    continue
                if answer.status_code == 201:
                    id_, token = answer.json()["id"], answer.headers[CONSISTENCY]
                    self.acknowledged.append(
                        Acknowledged(id_, email, token, sent, time.monotonic())
                    )
                elif not (
                    answer.status_code == 503
                    and answer.headers["content-type"] == "application/problem+json"
                ):
                    self.refused.append(f"{answer.status_code} {answer.text[:200]}")


def test_sigterm_drains_in_flight_writes_exits_0_and_loses_no_acknowledged_write(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    process, server = start_server(make_database(), tmp_path)
    writers = Writers(server.base_url)
    try:
        writers.start()
        time.sleep(3)
        assert writers.acknowledged, "the load must be under way"
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(STOP_BOUND)
        stopped = time.monotonic()
        time.sleep(0.5)  # the writers meet the closed port too
    finally:
        writers.stop()
        stop(process)
    assert code == 0, server.log_path.read_text()[-3000:]
    assert stopped - signalled <= STOP_BOUND
    assert not writers.refused, writers.refused[:5]
    assert writers.cut > 0  # new requests after the stop were refused at the door
    drained = [a for a in writers.acknowledged if a.sent < signalled < a.answered]
    assert drained, "the requests in flight at SIGTERM must be answered"
    assert "unhandled error" not in server.log_path.read_text()

    port = free_port()
    restarted = launch(server.env, port, server.log_path)  # the same database
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            admin = server.admin_headers(client)
            for written in writers.acknowledged:

                def projected(written: Acknowledged = written) -> bool:
                    headers = {**admin, CONSISTENCY: written.token}
                    answer = client.get(f"/users/{written.id}", headers=headers)
                    assert answer.status_code in (200, 503), answer.text
                    return answer.status_code == 200 and answer.json()["email"] == written.email

                eventually(projected, f"the acknowledged {written.email}", timeout=30)
    finally:
        stop(restarted)

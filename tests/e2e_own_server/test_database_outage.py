"""The database restarted, then stopped for seconds, under load, while one ``shop run``
serves: no process restart, no 500 and no hang (a prompt 503 with Retry-After while
the database is away, ``/health`` saying what is down), and afterwards every
projection and the checkout saga catch up and every acknowledged command is visible.
The Postgres is the test's own (embedded), so that it can restart and stop it."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.catalog_client import listed_product, make_cast
from tests.support.own_postgres import control
from tests.support.polling import eventually
from tests.support.server import start_server, stop
from tests.support.users_client import STRONG_PASSWORD, verified_account

pytestmark = pytest.mark.e2e

DB_TIMEOUT = 2.0
PROMPT = DB_TIMEOUT + 1.5
"""The longest any answer may take while the database is away."""


@dataclass
class Load:
    """Shoppers registering and checking out in a loop; what was acknowledged."""

    client: httpx.Client
    shopper: dict[str, str]
    product_id: str
    stopping: threading.Event = field(default_factory=threading.Event)
    statuses: Counter[int] = field(default_factory=Counter)
    registered: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    slowest: float = 0.0
    failures: list[str] = field(default_factory=list)

    def run(self) -> None:
        while not self.stopping.is_set():
            email = f"outage-{uuid.uuid4().hex[:10]}@example.com"
            body = {"email": email, "password": STRONG_PASSWORD, "name": "Outage Tester"}
            if (answer := self._send("POST", "/auth/register", json=body)) is not None:
                self.registered.append(answer["id"])
            line = {"product_id": self.product_id, "quantity": 1}
            if self._send("POST", "/cart/lines", json=line, headers=self.shopper) is not None:
                checkout = {
                    "shipping_address": {"line1": "1 Main St", "city": "Lyon", "country": "FR"},
                    "payment_method": "pm_card_visa",
                }
                key = {"Idempotency-Key": uuid.uuid4().hex, **self.shopper}
                if placed := self._send("POST", "/checkout", json=checkout, headers=key):
                    self.orders.append(placed["id"])
            time.sleep(0.02)

    def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        started = time.monotonic()
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            self.failures.append(f"{method} {path}: {error!r}")
            return None
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.statuses[response.status_code] += 1
        if response.status_code == 503:
            assert response.headers["retry-after"]
            assert response.json()["type"].endswith("/service-unavailable")
        if response.status_code < 300:
            answer: dict[str, Any] = response.json()
            return answer
        if response.status_code not in (409, 503):
            self.failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return None


def test_a_database_restart_and_outage_under_load_lose_nothing(
    own_postgres: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    database = own_postgres.get_uri()
    data = Path(tmp_path_factory.mktemp("shop-outage"))
    settings = {"SHOP_DB_TIMEOUT": str(DB_TIMEOUT), "SHOP_LOGIN_ATTEMPTS_PER_ADDRESS": "100000"}
    process, server = start_server(database, data, settings)
    try:
        with server.client() as client, server.client() as health:
            cast = make_cast(server)
            product_id, _ = listed_product(client, cast, "5.00", stock=100_000)
            shopper = verified_account(server, client, "outage").headers
            load = Load(client, shopper, product_id)
            worker = threading.Thread(target=load.run)
            worker.start()
            try:
                time.sleep(2)
                control(own_postgres, "restart", "-m", "fast")
                time.sleep(3)
                control(own_postgres, "stop", "-m", "fast")
                started = time.monotonic()
                down = health.get("/health")
                took = time.monotonic() - started
                time.sleep(DB_TIMEOUT + 2)  # the load meets the outage meanwhile
                own_postgres.ensure_postgres_running()  # as the wheel starts it
                time.sleep(4)
            finally:
                load.stopping.set()
                worker.join(60)
            assert process.poll() is None, "shop run must survive without a restart"
            assert down.status_code == 503 and took < PROMPT, (down.text, took)
            assert down.json()["status"] == "down"
            assert down.json()["checks"]["database"].startswith("unavailable")
            assert not load.failures, load.failures[:5]
            assert load.statuses[503] > 0, load.statuses
            assert not {s for s in load.statuses if s >= 500} - {503}, load.statuses
            assert load.slowest < PROMPT, load.slowest
            assert load.registered and load.orders

            # Everything acknowledged is there, every projection and the saga caught up.
            def healthy() -> bool:
                state = health.get("/health").json()
                assert state["status"] == "ok", state
                return True

            def caught_up() -> bool:
                left = (undecided(conn, load.orders), missing(conn, load.registered))
                assert left == (0, 0), left
                return True

            eventually(healthy, "/health ok again", timeout=60, interval=0.5)
            with psycopg.connect(database) as conn:
                eventually(
                    caught_up, "every order decided, every user seen", timeout=60, interval=0.5
                )
            lag = server.shop("projections", "status")
            assert lag.returncode == 0, lag.stderr
            assert all(row.split()[-1] == "0" for row in table_rows(lag.stdout)), lag.stdout
    finally:
        stop(process)


def undecided(conn: psycopg.Connection[Any], orders: list[str]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM unnest(%s::uuid[]) AS o(id) LEFT JOIN read.orders r "
        "ON r.order_id = o.id WHERE r.status IS NULL OR r.status NOT IN ('confirmed', 'rejected')",
        (orders,),
    ).fetchone()
    return int(row[0]) if row else len(orders)


def missing(conn: psycopg.Connection[Any], users: list[str]) -> int:
    """Registered users without their profile or their verification mail."""
    row = conn.execute(
        "SELECT count(*) FROM unnest(%s::uuid[]) AS u(id) LEFT JOIN read.user_profiles p "
        "ON p.user_id = u.id LEFT JOIN public.mailbox m ON m.recipient = p.email "
        "WHERE m.message_id IS NULL",
        (users,),
    ).fetchone()
    return int(row[0]) if row else len(users)


def table_rows(text: str) -> list[str]:
    return [line.strip("│┃ ") for line in text.splitlines() if line.startswith("│")]

"""End-to-end fixtures: the app started exactly as an operator starts it.

One ``shop run`` process serves the whole e2e session (starting it costs seconds;
every test makes its own accounts, so they do not see each other's state). The
first admin is made beforehand with ``shop users create-admin``, as in production.
Everything is driven over HTTP with httpx; the only side door is a count of rows in
the event store, to prove that refused requests wrote nothing.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

from tests.conftest import TEST_SECRET

if TYPE_CHECKING:
    from tests.e2e.catalog_support import Cast

ADMIN_EMAIL = "admin@example.com"
ADMIN_NAME = "Admin"
ADMIN_PASSWORD = "orbit-canoe-velvet-thunder-42"
STRONG_PASSWORD = "lantern-mosaic-quiver-harbor-97"
PROBLEM = "application/problem+json"
PROBLEM_BASE = "https://eventshop.example/problems/"
VERIFY_SUBJECT = "Verify your email address"
RESET_SUBJECT = "Reset your password"
_TOKEN_IN_MAIL = re.compile(r"Or send this token to the API: (\S+)")
STARTUP_SECONDS = 60.0
MAIL_SECONDS = 15.0


def shop_command() -> list[str]:
    """The venv's ``shop`` entry point, next to the interpreter running the tests
    (not resolved: the venv's python is a symlink to the base interpreter)."""
    script = Path(sys.executable).parent / "shop"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from infra.entrypoints.cli import app; app()"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """The test runner's environment without any SHOP_ setting that could leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}


@dataclass
class Server:
    """A running ``shop run`` and what tests need to talk to it."""

    base_url: str
    env: dict[str, str]
    database_url: str
    log_path: Path
    _admin_token: str | None = field(default=None, repr=False)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30.0)

    def shop(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a ``shop`` CLI command against the same database."""
        return subprocess.run(
            [*shop_command(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def event_count(self) -> int:
        """Rows in the users event store: what a refused request must not change."""
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM public.users_events").fetchone()
        assert row is not None
        return int(row[0])

    def admin_token(self, client: httpx.Client) -> str:
        """An access token of the CLI-made admin (logged in once per session)."""
        if self._admin_token is None:
            response = client.post(
                "/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            assert response.status_code == 200, response.text
            self._admin_token = str(response.json()["access_token"])
        return self._admin_token

    def admin_headers(self, client: httpx.Client) -> dict[str, str]:
        return bearer(self.admin_token(client))

    def mail(
        self, client: httpx.Client, to: str, subject: str, count: int = 1
    ) -> list[dict[str, Any]]:
        """The messages with ``subject`` to ``to`` (newest first), waiting until at
        least ``count`` have arrived: mail is sent by a policy after the commit."""
        deadline = time.monotonic() + MAIL_SECONDS
        while True:
            response = client.get(
                "/admin/mailbox", params={"to": to}, headers=self.admin_headers(client)
            )
            assert response.status_code == 200, response.text
            items = [m for m in response.json()["items"] if m["subject"] == subject]
            if len(items) >= count:
                return items
            if time.monotonic() > deadline:
                raise AssertionError(f"no {subject!r} mail to {to} after {MAIL_SECONDS} s")
            time.sleep(0.05)

    def mailed_token(self, client: httpx.Client, to: str, subject: str, count: int = 1) -> str:
        """The token in the newest ``subject`` mail to ``to``."""
        newest = self.mail(client, to, subject, count)[0]
        match = _TOKEN_IN_MAIL.search(newest["body"])
        assert match is not None, newest["body"]
        return match.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem_type(response: httpx.Response) -> str:
    """The problem ``type`` of an error answer, after checking it is problem+json."""
    assert response.headers["content-type"].startswith(PROBLEM), (
        response.status_code,
        response.headers.get("content-type"),
        response.text,
    )
    body = response.json()
    assert body["status"] == response.status_code
    assert isinstance(body["type"], str)
    assert body["type"].startswith(PROBLEM_BASE), body
    return body["type"].removeprefix(PROBLEM_BASE)


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class Account:
    id: str
    email: str
    password: str
    name: str
    access_token: str = ""
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


def register(client: httpx.Client, email: str, password: str, name: str) -> httpx.Response:
    return client.post("/auth/register", json={"email": email, "password": password, "name": name})


def login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/auth/login", json={"email": email, "password": password})


def verified_account(server: Server, client: httpx.Client, label: str = "user") -> Account:
    """A registered, verified and logged-in customer."""
    email, name = unique_email(label), f"{label.capitalize()} Tester"
    registered = register(client, email, STRONG_PASSWORD, name)
    assert registered.status_code == 201, registered.text
    token = server.mailed_token(client, email, VERIFY_SUBJECT)
    verified = client.post("/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    logged_in = login(client, email, STRONG_PASSWORD)
    assert logged_in.status_code == 200, logged_in.text
    tokens = logged_in.json()
    # Login waits for the access view at most 2 s: on a loaded machine the session
    # may reach it a little later, and the token works from then on.
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    deadline = time.monotonic() + STARTUP_SECONDS
    while (me := client.get("/users/me", headers=headers)).status_code == 401:
        assert time.monotonic() < deadline, me.text
        time.sleep(0.05)
    assert me.status_code == 200, me.text
    return Account(
        id=registered.json()["id"],
        email=email,
        password=STRONG_PASSWORD,
        name=name,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"shop run exited with {process.returncode}:\n{log_path.read_text()}"
                )
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"shop run not healthy after {STARTUP_SECONDS} s:\n{log_path.read_text()}")


def create_admin(env: dict[str, str]) -> None:
    """The first admin, made with the CLI as an operator makes it."""
    created = subprocess.run(
        [
            *shop_command(),
            "users",
            "create-admin",
            "--email",
            ADMIN_EMAIL,
            "--name",
            ADMIN_NAME,
            "--password",
            ADMIN_PASSWORD,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    assert "admin created" in created.stdout, created.stdout


def start_server(
    database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Server]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **_clean_env(),
        "SHOP_DATABASE_URL": database_url,
        "SHOP_DATA_DIR": str(data_dir),
        "SHOP_SECRET_KEY": TEST_SECRET,
        "SHOP_PUBLIC_URL": base_url,
        # Smaller pools than production's: two servers and the test process share the
        # database's 100 connections (ten pools of 1 + overflow each, per server).
        "SHOP_DB_POOL_SIZE": "4",
        **(extra_env or {}),
    }
    create_admin(env)
    log_path = data_dir / "shop-run.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [*shop_command(), "run", "--port", str(port)],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    log_file.close()  # the child holds its own descriptor
    try:
        _wait_healthy(process, base_url, log_path)
    except BaseException:
        stop(process)
        raise
    return process, Server(base_url, env, database_url, log_path)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="package")
def server(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """``shop run`` on a fresh database, for the e2e tests only (stopped after them:
    its connections count against the server's ``max_connections``, which the
    scaled-mode tests need). The per-address limits (every test comes
    from 127.0.0.1) are raised so that the suite itself is not throttled; the
    per-account limits keep their defaults and are tested on their own accounts."""
    process, running = start_server(
        make_database(),
        tmp_path_factory.mktemp("shop-data"),
        {
            "SHOP_LOGIN_ATTEMPTS_PER_ADDRESS": "100000",
            "SHOP_RESET_REQUESTS_PER_ADDRESS": "100000",
        },
    )
    try:
        yield running
    finally:
        stop(process)
    # A 500 anywhere in the session is a bug, even where the test looked elsewhere.
    assert "unhandled error" not in running.log_path.read_text()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def cast(server: Server) -> Cast:
    """An admin, two sellers, a customer and a category, per test module."""
    from tests.e2e.catalog_support import make_cast  # it imports this module

    return make_cast(server)

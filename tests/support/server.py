"""``shop run`` as an operator runs it: the first admin made with the CLI, the
server started on a free port and waited for until healthy, stopped with SIGTERM;
and ``Server``, what a test needs to talk to a running one."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TEST_SECRET
from tests.support.api import bearer
from tests.support.polling import eventually
from tests.support.side_door import row_counts

ADMIN_EMAIL = "admin@example.com"
ADMIN_NAME = "Admin"
ADMIN_PASSWORD = "orbit-canoe-velvet-thunder-42"
VERIFY_SUBJECT = "Verify your email address"
RESET_SUBJECT = "Reset your password"
_TOKEN_IN_MAIL = re.compile(r"Or send this token to the API: (\S+)")
STARTUP_SECONDS = 60.0
MAIL_SECONDS = 15.0
NO_ADDRESS_LIMITS = {
    "SHOP_LOGIN_ATTEMPTS_PER_ADDRESS": "100000",
    "SHOP_RESET_REQUESTS_PER_ADDRESS": "100000",
}
"""Every test request comes from 127.0.0.1: the per-address limits would throttle a
whole suite (the per-account ones keep their defaults, tested on their own accounts)."""


def shop_command() -> list[str]:
    """The venv's ``shop`` entry point, next to the interpreter running the tests
    (not resolved: the venv's python is a symlink to the base interpreter)."""
    script = Path(sys.executable).parent / "shop"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from infra.entrypoints.cli import app; app()"]


def run_shop(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """A ``shop`` CLI command with ``env``, run to its end (its output captured)."""
    return subprocess.run(
        [*shop_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def clean_env() -> dict[str, str]:
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
        return run_shop(self.env, *args)

    def event_count(self) -> int:
        """Rows in the users event store: what a refused request must not change."""
        return row_counts(self, ("users_events",))["users_events"]

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

        def arrived() -> list[dict[str, Any]] | None:
            response = client.get(
                "/admin/mailbox", params={"to": to}, headers=self.admin_headers(client)
            )
            assert response.status_code == 200, response.text
            items = [m for m in response.json()["items"] if m["subject"] == subject]
            return items if len(items) >= count else None

        return eventually(arrived, f"{count} {subject!r} mail to {to}", timeout=MAIL_SECONDS)

    def mailed_token(self, client: httpx.Client, to: str, subject: str, count: int = 1) -> str:
        """The token in the newest ``subject`` mail to ``to``."""
        newest = self.mail(client, to, subject, count)[0]
        match = _TOKEN_IN_MAIL.search(newest["body"])
        assert match is not None, newest["body"]
        return match.group(1)


def create_admin(env: dict[str, str]) -> None:
    """The first admin, made with the CLI as an operator makes it."""
    created = run_shop(
        env,
        *("users", "create-admin", "--email", ADMIN_EMAIL, "--name", ADMIN_NAME),
        *("--password", ADMIN_PASSWORD),
        timeout=120,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    assert "admin created" in created.stdout, created.stdout


def wait_healthy(
    process: subprocess.Popen[bytes], base_url: str, log_path: Path, verify: str | bool = True
) -> None:
    """Until ``/health`` answers 200; a RuntimeError with the log if ``shop run``
    exits first. ``verify``: the CA file an HTTPS server's certificate is checked with."""
    with httpx.Client(base_url=base_url, timeout=2.0, verify=verify) as client:

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"shop run exited with {process.returncode}:\n{log_path.read_text()}"
                )
            return client.get("/health").status_code == 200

        eventually(
            healthy,
            f"shop run healthy at {base_url} (log: {log_path})",
            timeout=STARTUP_SECONDS,
            interval=0.1,
            retry_on=(httpx.TransportError,),
        )


def launch(
    env: dict[str, str], port: int | str, log_path: Path, verify: str | bool = True
) -> subprocess.Popen[bytes]:
    """``shop run --port`` with ``env``, its output appended to ``log_path``, once
    healthy (over HTTPS when ``env`` sets SHOP_TLS_CERT)."""
    with log_path.open("ab") as log:  # the child holds its own descriptor
        process = subprocess.Popen(
            [*shop_command(), "run", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        scheme = "https" if env.get("SHOP_TLS_CERT") else "http"
        wait_healthy(process, f"{scheme}://127.0.0.1:{port}", log_path, verify)
    except BaseException:
        stop(process)
        raise
    return process


def start_server(
    database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Server]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **clean_env(),
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
    process = launch(env, port, log_path)
    return process, Server(base_url, env, database_url, log_path)


@contextmanager
def running_server(
    database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """``start_server`` for the block, stopped after it; then its log must show no
    unhandled error (a 500 anywhere is a bug, even where the test looked elsewhere)."""
    process, running = start_server(database_url, data_dir, extra_env)
    try:
        yield running
    finally:
        stop(process)
    assert "unhandled error" not in running.log_path.read_text()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

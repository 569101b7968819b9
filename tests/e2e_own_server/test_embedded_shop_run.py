"""``shop run`` with no configuration at all: the embedded Postgres stops with it on
SIGTERM (what kill, systemd and container runtimes send) as on Ctrl-C, a SIGKILL of
both needs no hand step before the next start, and the mail links name the port
actually served."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from tests.conftest import TEST_SECRET
from tests.support.polling import eventually
from tests.support.server import (
    VERIFY_SUBJECT,
    Server,
    clean_env,
    create_admin,
    free_port,
    launch,
)
from tests.support.users_client import STRONG_PASSWORD, register, unique_email

pytestmark = pytest.mark.e2e


def postmaster(data_dir: Path) -> int | None:
    """The pid of a live postmaster on the data folder's server, if any."""
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().split()[0])
    try:
        alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return None
    return pid if alive else None


def test_embedded_shop_run_stops_on_sigterm_and_recovers_from_sigkill(tmp_path: Path) -> None:
    port = free_port()
    env = {**clean_env(), "SHOP_DATA_DIR": str(tmp_path), "SHOP_SECRET_KEY": TEST_SECRET}
    create_admin(env)
    log_path = tmp_path / "shop-run.log"
    server = Server(f"http://127.0.0.1:{port}", env, "", log_path)
    process = launch(env, port, log_path)
    try:
        with server.client() as client:
            email = unique_email("embedded")
            assert register(client, email, STRONG_PASSWORD, "Embedded").status_code == 201
            body = server.mail(client, email, VERIFY_SUBJECT)[0]["body"]
        assert f"http://127.0.0.1:{port}/verify-email?token=" in body  # no SHOP_PUBLIC_URL
        assert postmaster(tmp_path) is not None

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert postmaster(tmp_path) is None  # stopped, as Ctrl-C stops it

        process = launch(env, port, log_path)
        server_pid = postmaster(tmp_path)
        assert server_pid is not None
        process.kill()
        process.wait(timeout=10)
        os.kill(server_pid, signal.SIGKILL)  # a crash: postmaster.pid stays behind
        eventually(lambda: postmaster(tmp_path) is None, "the killed postmaster gone", timeout=10)

        process = launch(env, port, log_path)  # no hand step in between
        with server.client() as client:
            assert client.get("/health").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert postmaster(tmp_path) is None
    finally:
        if process.poll() is None:
            process.kill()
        leftover = postmaster(tmp_path)
        if leftover is not None:
            os.kill(leftover, signal.SIGTERM)
    assert "unhandled error" not in log_path.read_text()

"""The embedded Postgres of the no-setup mode: stopped when the last process using it
exits (on SIGTERM as on a normal exit), even after an earlier one was killed
outright; started again after the server itself was."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import psycopg
import pytest

from tests.support.polling import eventually

pytestmark = pytest.mark.integration

USE_SERVER = """
import os, signal, sys, time
from pathlib import Path
from infra.postgres.server import database_conninfo
from infra.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), database_url=None)
print(database_conninfo(settings), flush=True)
if sys.argv[2] == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[2] == "terminated":
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)  # the signal ends the process before
"""


def use_server(data_dir: Path, ending: str) -> str:
    """A process that starts (or joins) the embedded server and ends so; its URI."""
    done = subprocess.run(
        [sys.executable, "-c", USE_SERVER, str(data_dir), ending],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    postmaster = tmp_path / "pg" / "postmaster.pid"
    if postmaster.exists():  # the test failed: stop what it left running
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(postmaster.read_text().split()[0]), signal.SIGTERM)


def test_a_killed_user_does_not_keep_the_server_running(data_dir: Path) -> None:
    uri = use_server(data_dir, "killed")
    with psycopg.connect(uri) as conn:  # left running by the killed process
        assert conn.execute("SELECT 1").fetchone() == (1,)
    use_server(data_dir, "exited")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(uri, connect_timeout=3)


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])


def gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_sigterm_stops_the_server_as_an_exit_does(data_dir: Path) -> None:
    uri = use_server(data_dir, "terminated")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(uri, connect_timeout=3)
    assert not (data_dir / "pg" / "postmaster.pid").exists()


def test_a_killed_server_starts_again_though_its_pid_now_names_another_process(
    data_dir: Path,
) -> None:
    """After a crash or a reboot, postmaster.pid (and the socket's lock) may name a
    process that is not Postgres: the server starts anyway, and that process lives."""
    use_server(data_dir, "killed")
    postmaster = postmaster_pid(data_dir)
    os.kill(postmaster, signal.SIGKILL)
    eventually(lambda: gone(postmaster), "the killed postmaster gone", timeout=10)
    with subprocess.Popen(["sleep", "60"]) as bystander:
        try:
            pgdata = data_dir / "pg"
            for lock in [pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")]:
                lines = lock.read_text().splitlines()
                lock.write_text("\n".join([str(bystander.pid), *lines[1:]]) + "\n")
            uri = use_server(data_dir, "killed")
            with psycopg.connect(uri) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            assert bystander.poll() is None
        finally:
            bystander.kill()
    use_server(data_dir, "exited")
    assert not (data_dir / "pg" / "postmaster.pid").exists()

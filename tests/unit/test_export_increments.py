"""Incremental export: whatever the runs (events added between them, any file size,
any ``--to``) and wherever a run dies (before a part is renamed, or after it and
before the manifest lists it), a last run leaves every event of the log exported
exactly once, in order. The real Parquet files and DuckDB, over an in-memory log."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.duckdb.event_queries import DuckDBEventQueries
from infra.parquet.event_files import open_event_files
from streams.export import manifest
from streams.export.exporter import Exporter, ExportRefused
from streams.export.queries import NothingExported, QueryRefused


class Counter(Aggregate):
    @event("Counted")
    def count(self, by: int) -> None:
        pass


class Counters(Application[Any]):
    name = "counters"


class Killed(Exception):
    """Where a SIGKILL would have stopped the run."""


@contextmanager
def killed_at(point: str | None, after: int) -> Iterator[None]:
    """The run dies at its ``after``-th part (``part``: the file written, not yet
    renamed) or manifest write (``manifest``: the part renamed, not yet listed)."""
    calls = {"n": 0}

    def dies() -> bool:
        calls["n"] += 1
        return calls["n"] > after

    if point == "part":
        real_replace = Path.replace

        def replace(self: Path, target: Any) -> Path:
            if str(target).endswith(".parquet") and dies():
                raise Killed
            return real_replace(self, target)

        with mock.patch.object(Path, "replace", replace):
            yield
    elif point == "manifest":
        real_save = manifest.save

        def save(directory: Path, contents: manifest.Manifest) -> None:
            if dies():
                raise Killed
            real_save(directory, contents)

        with mock.patch.object(manifest, "save", save):
            yield
    else:
        yield


def add(app: Counters, events: int) -> None:
    counter = Counter()
    for n in range(events):
        counter.count(n)
    app.save(counter)


def export(app: Counters, directory: Path, file_events: int = 3, stop: int | None = None) -> None:
    with open_event_files(directory) as files:
        Exporter([app], files, file_events, page=4).export(stop=stop)


def positions(directory: Path) -> list[int]:
    result = DuckDBEventQueries(directory).run("SELECT position FROM counters ORDER BY position")
    return [int(str(values[0])) for values in result.rows]


runs = st.lists(
    st.tuples(
        st.integers(0, 12),  # events added before the run
        st.integers(1, 5),  # events per file
        st.one_of(st.none(), st.integers(0, 60)),  # --to
        st.sampled_from([None, "part", "manifest"]),  # where the run dies
        st.integers(0, 3),  # after how many writes
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=15, deadline=None)  # each example writes files: seconds
@given(runs=runs)
def test_every_event_is_exported_once_whatever_the_runs_and_kills(
    runs: list[tuple[int, int, int | None, str | None, int]],
) -> None:
    app = Counters()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        for added, file_events, stop, point, after in runs:
            add(app, added)
            try:
                with killed_at(point, after):
                    export(app, directory, file_events, stop)
            except Killed:
                pass
            exported = positions(directory) if manifest.load(directory).logs else []
            assert exported == sorted(set(exported))  # never a duplicate
            assert exported == list(range(1, len(exported) + 1))  # never a gap
        export(app, directory)
        head = app.recorder.max_notification_id() or 0
        assert positions(directory) == list(range(1, head + 1))
        assert not list(directory.glob("*/.*.tmp"))


def test_a_range_starts_a_new_export_and_is_never_moved(tmp_path: Path) -> None:
    app = Counters()
    add(app, 10)  # and its creation: 11 events
    with open_event_files(tmp_path) as files:
        Exporter([app], files).export(start=4, stop=6)
    assert positions(tmp_path) == [4, 5, 6]
    with open_event_files(tmp_path) as files:
        Exporter([app], files).export()  # goes on after 6, never back to 1
    assert positions(tmp_path) == list(range(4, 12))
    with open_event_files(tmp_path) as files, pytest.raises(ExportRefused, match="gap"):
        Exporter([app], files).export(start=1)


def test_one_run_at_a_time_and_never_into_a_folder_of_other_files(tmp_path: Path) -> None:
    app = Counters()
    add(app, 2)
    with open_event_files(tmp_path), pytest.raises(ExportRefused, match="another export"):
        export(app, tmp_path)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"not an export")
    with pytest.raises(ExportRefused, match="no export manifest"):
        export(app, other)
    assert (other / "cat.jpg").exists()


def test_bad_sql_and_an_empty_folder_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(NothingExported, match="shop export events"):
        DuckDBEventQueries(tmp_path).run("SELECT 1")
    app = Counters()
    add(app, 1)
    export(app, tmp_path)
    queries = DuckDBEventQueries(tmp_path)
    with pytest.raises(QueryRefused, match="syntax error"):
        queries.run("SELEC position FROM counters")
    with pytest.raises(QueryRefused, match="nowhere"):
        queries.run("SELECT * FROM nowhere")
    with pytest.raises(QueryRefused, match="Permission"):
        queries.run("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(QueryRefused, match="Permission"):
        queries.run(f"COPY counters TO '{tmp_path.parent}/copy.csv'")
    assert queries.run("SELECT count(*) FROM events").rows == [(2,)]  # created, counted

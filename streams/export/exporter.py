"""``Exporter``: each log's events after the last exported position, decoded through
the application's own mapper (so state encrypted at rest is written readable, and
whatever the mapper withholds stays withheld), handed to the export's files in parts.

A run reads each log up to the head it saw when it started (events saved meanwhile
wait for the next run), in pages, and commits a part every ``file_events`` events:
a run killed midway keeps every part it committed, and the next goes on after the
last one (``manifest``). Positions are read in order from the log, which never shows
a later event before an earlier committed one (the event store's insert lock), so
the last exported position is a complete watermark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from projections.engine import Undecodable
from streams.export.manifest import LogExport
from streams.export.schema import PayloadNotEncodable, row
from streams.poison import decoded

PAGE = 1_000
"""Events read from the store per query."""
FILE_EVENTS = 100_000
"""Events per part file, by default: a part is also what a killed run can lose."""

Row = tuple[object, ...]
Progress = Callable[[str, int, int], None]
"""(log, position reached, head of the log)."""


class ExportFiles(Protocol):
    """Where the export goes: an export directory, opened for one run."""

    def exported(self, log: str) -> LogExport | None:
        """What of ``log`` is exported there; None if nothing is."""
        ...

    def commit(self, log: str, start: int, position: int, rows: Sequence[Row]) -> None:
        """Append ``rows`` (positions up to ``position``) to ``log``'s export and
        move its watermark to ``position``, in one step a kill cannot split."""
        ...


class ExportRefused(ValueError):
    """Options that would duplicate, skip or miss events: nothing is written."""


class ExportStopped(RuntimeError):
    """An event the export cannot write (it does not decode, or a field has no JSON
    form): everything before it is committed, nothing after."""


@dataclass(frozen=True)
class LogReport:
    log: str
    exported: int
    """Events this run added."""
    position: int
    """The log's last exported position now."""


class Exporter:
    def __init__(
        self,
        apps: Sequence[Application[Any]],
        files: ExportFiles,
        file_events: int = FILE_EVENTS,
        page: int = PAGE,
    ) -> None:
        self.apps = {app.name: app for app in apps}
        self.files = files
        self.file_events = file_events
        self.page = page

    def logs(self) -> list[str]:
        return list(self.apps)

    def export(
        self,
        log: str | None = None,
        start: int | None = None,
        stop: int | None = None,
        progress: Progress | None = None,
    ) -> list[LogReport]:
        """Export every log (or ``log``) after what is already exported, up to
        position ``stop`` if given; ``start``: where a log not yet exported here
        begins (refused for one that is, which would leave a gap or a duplicate)."""
        if log is not None and log not in self.apps:
            raise ExportRefused(f"no log {log!r}: the logs are {', '.join(self.apps)}")
        if start is not None and stop is not None and stop < start:
            raise ExportRefused(f"--to {stop} is before --from {start}")
        chosen = [self.apps[log]] if log else list(self.apps.values())
        for app in chosen:
            done = self.files.exported(app.name)
            if start is not None and done is not None and done.start != start:
                raise ExportRefused(
                    f"{app.name} is exported here from position {done.start} up to "
                    f"{done.position}: --from {start} would leave a gap or a duplicate; "
                    "export that range into another directory (--dir)"
                )
        return [self._export_log(app, start, stop, progress) for app in chosen]

    def _export_log(
        self,
        app: Application[Any],
        start: int | None,
        stop: int | None,
        progress: Progress | None,
    ) -> LogReport:
        done = self.files.exported(app.name)
        first = done.start if done else (start or 1)
        last = done.position if done else first - 1
        head = app.recorder.max_notification_id() or 0
        bound = head if stop is None else min(stop, head)
        if done is None:
            self.files.commit(app.name, first, last, [])  # where this log's export begins
        rows: list[Row] = []
        exported = 0
        if progress:
            progress(app.name, last, head)
        while last < bound:
            page = app.recorder.select_notifications(start=last + 1, limit=self.page, stop=bound)
            if not page:
                break
            for notification in page:
                try:
                    rows.append(self._row(app, notification))
                except ExportStopped:
                    self.files.commit(app.name, first, last, rows)
                    raise
                last = notification.id
                if len(rows) >= self.file_events:
                    self.files.commit(app.name, first, last, rows)
                    exported += len(rows)
                    rows = []
            if progress:
                progress(app.name, last, head)
        if rows:
            self.files.commit(app.name, first, last, rows)
            exported += len(rows)
        return LogReport(app.name, exported, last)

    def _row(self, app: Application[Any], notification: Notification) -> Row:
        where = f"{app.name}:{notification.id}"
        event, _ = decoded(app, notification, notification.id)
        if isinstance(event, Undecodable):
            raise ExportStopped(f"the event at {where} does not decode: {event.error}")
        try:
            return row(app.name, notification.id, notification.topic, event)
        except PayloadNotEncodable as error:
            raise ExportStopped(f"the event at {where}: {error}") from error

"""The port ``shop analytics query`` runs SQL through, over an export directory:
one view per log (named after it) and ``events`` over them all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

ALL_EVENTS = "events"
"""The view over every log's events."""


class QueryRefused(ValueError):
    """SQL that does not parse, names what does not exist, or reaches outside the
    export: the engine's own message, for whoever wrote it."""


class NothingExported(LookupError):
    """The directory holds no export to query."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: Sequence[tuple[object, ...]]


class EventQueries(Protocol):
    def run(self, sql: str) -> QueryResult: ...

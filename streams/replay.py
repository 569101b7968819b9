"""Batch replay of an application's log into a view: catch-up at start and rebuild."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import TrackingRecorder
from eventsourcing.projection import Projection

from projections.engine import apply_batch
from streams.poison import Failures, apply_guarded, decoded

Progress = Callable[[int, int], None]
BATCH_SIZE = 2000


def catch_up(
    app: Application[Any],
    view: TrackingRecorder,
    projection: Projection[Any],
    *,
    failures: Failures | None = None,
    until: int | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> int:
    """Apply every event after the view's tracked position up to ``until`` (default:
    the head when called), ``batch_size`` events per transaction. Returns the
    position reached. Safe to interrupt: a batch commits whole or not at all. With
    ``failures``, an event that fails that many times is dead-lettered
    (``apply_guarded``); without, any failure raises."""
    position = view.max_tracking_id(app.name) or 0
    head = until if until is not None else (app.recorder.max_notification_id() or 0)
    while position < head:
        notifications = app.recorder.select_notifications(
            start=position + 1, limit=batch_size, stop=head
        )
        if not notifications:
            break
        deliveries = [decoded(app, n, n.id) for n in notifications]
        if failures is None:
            apply_batch(view, projection, app.name, deliveries)
        else:
            apply_guarded(view, projection, app.name, deliveries, failures)
        position = notifications[-1].id
        if progress is not None:
            progress(position, head)
    return position

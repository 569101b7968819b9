"""The stream worker's core without a broker: one ``LogApplier`` per log, fed each
log's events shuffled, with copies and a missing one. Tracking never passes the
missing event (read-your-writes cannot claim it), every copy is acknowledged once,
and once complete the read models equal a rebuild from the event store. A gap Kafka
never fills is read from the store; a rebuild's new generation is followed."""

from __future__ import annotations

import random
import time
from functools import partial
from typing import Any

import pytest
from eventsourcing.application import Application

from domain.positions import Position
from infra.entrypoints.rebuild import rebuild
from infra.postgres.waiting import PollingWaiter
from infra.wiring.process import Container
from projections.positions import tracked_position
from streams.kafka_codec import RelayedEvent
from streams.log_applier import LogApplier
from tests.integration.kafka.read_models import lagging, served_and_rebuilt
from tests.integration.kafka.workload import Workload

pytestmark = pytest.mark.integration


def relayed(app: Application[Any], after: int = 0) -> list[RelayedEvent]:
    notifications = app.recorder.select_notifications(start=1, limit=100_000)
    prevs = [0, *(n.id for n in notifications[:-1])]
    return [
        RelayedEvent(app.name, n.id, prev, n)
        for n, prev in zip(notifications, prevs, strict=False)
        if n.id > after
    ]


def applier(
    container: Container,
    app: Application[Any],
    gap_timeout: float = 3600.0,
    max_held: int = 1_000_000,
) -> LogApplier:
    return LogApplier(
        app,
        container.specs,
        container.active_generations,
        container.ensure_generation,
        container.conninfo,
        gap_timeout,
        max_held,
    )


def step(applier: LogApplier) -> None:
    for ack in applier.step():
        ack()


def assert_equal_to_a_rebuild(container: Container) -> None:
    assert not lagging(container)
    served, rebuilt = served_and_rebuilt(container)
    for name in rebuilt:
        assert served[name] == rebuilt[name], name


def test_shuffled_copies_with_a_missing_event(container: Container) -> None:
    Workload(container).run(25)
    shuffle = random.Random(5)
    appliers = {app.name: applier(container, app) for app in container.applications()}
    acked: dict[str, list[int]] = {}

    def ack(event: RelayedEvent) -> None:
        acked.setdefault(event.log, []).append(event.position)

    held_back = {}
    try:
        written = [app for app in container.applications() if relayed(app)]
        for app in written:
            events = relayed(app)
            missing = events[len(events) // 2]
            held_back[app.name] = missing
            arrivals = events + shuffle.sample(events, len(events) // 3)
            shuffle.shuffle(arrivals)
            for e in arrivals:
                if e is not missing:
                    due = appliers[app.name].offer(e, partial(ack, e))
                    assert due == []
            step(appliers[app.name])
        waiter = PollingWaiter(container.pool)
        with container.pool.connection() as conn:
            for spec in container.specs:
                for app_class in spec.upstream:
                    held = held_back.get(app_class.name)
                    expected = held.prev_position if held is not None else 0
                    assert tracked_position(conn, spec.name, app_class.name) == expected
        # Read-your-writes cannot claim a position beyond the missing event.
        users = held_back["users"]
        assert not waiter.wait("user_profiles", [Position("users", users.position)], 0.2)
        for name, missing in held_back.items():
            appliers[name].offer(missing, partial(ack, missing))
            step(appliers[name])
        assert waiter.wait("user_profiles", [Position("users", users.position)], 0.2)
        for app in written:
            # Every copy acknowledged, once each event has been applied everywhere.
            positions = [e.position for e in relayed(app)]
            assert sorted(set(acked[app.name])) == positions
        assert_equal_to_a_rebuild(container)
    finally:
        for a in appliers.values():
            a.close()


def test_a_gap_kafka_does_not_fill_is_read_from_the_store(container: Container) -> None:
    Workload(container).run(15)
    appliers = [applier(container, app, gap_timeout=0.05) for app in container.applications()]
    try:
        for a in appliers:
            # Retention dropped the log's first events: only the last few are on Kafka.
            for e in relayed(a.app)[-3:]:
                a.offer(e, lambda: None)
            step(a)  # notices the gap
        time.sleep(0.1)
        for a in appliers:
            step(a)  # reads it from the store, then applies what Kafka brought
        assert_equal_to_a_rebuild(container)
    finally:
        for a in appliers:
            a.close()


def test_a_gap_holding_back_too_many_events_is_read_from_the_store_at_once(
    container: Container,
) -> None:
    Workload(container).run(15)
    users = container.users_app
    bounded = applier(container, users, max_held=3)
    try:
        held_back = relayed(users)[1:]  # the first event never came
        assert len(held_back) > 3
        for e in held_back[:2]:
            bounded.offer(e, lambda: None)
        step(bounded)
        assert bounded.held == 2, "two events wait for the gap (the timeout is an hour)"
        for e in held_back[2:]:
            bounded.offer(e, lambda: None)
        step(bounded)
        assert bounded.held == 0, "past the bound, the gap came from the store"
    finally:
        bounded.close()


def test_a_rebuilt_generation_is_followed(container: Container) -> None:
    Workload(container).run(10)
    catalog = applier(container, container.catalog_app)
    try:
        for e in relayed(container.catalog_app):
            catalog.offer(e, lambda: None)
        step(catalog)
        head = container.catalog_app.recorder.max_notification_id() or 0
        assert rebuild(container, "catalog_categories") == 2
        Workload(container, seed=2).run(5)
        for e in relayed(container.catalog_app, after=head):
            catalog.offer(e, lambda: None)
        step(catalog)
        with container.pool.connection() as conn:
            new_head = container.catalog_app.recorder.max_notification_id()
            assert tracked_position(conn, "catalog_categories", "catalog") == new_head
    finally:
        catalog.close()

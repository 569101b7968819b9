"""The notifier and its delivery against a real Postgres, through the process's own
wiring: each triggering event decides once however often it is delivered, and a
worker killed between the recorded intent and the send loses nothing: the delivery
is sent once after the restart (docs/adr/0017-notifications.md)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from commands.notifications.delivery import Deliverer, deliver_all
from commands.notifications.outcomes import OutcomeEvents
from commands.notifications.ports import Outgoing, TransientFailure
from commands.notifications.rendering import Renderer
from domain.deliveries import DeliveryOutcome
from domain.notifications import Channel, Kind
from domain.users import Role
from infra.postgres.notifications import PostgresDeliveryLog, PostgresDeliveryQueue
from infra.wiring.process import Container
from infra.wiring.shared import utc_now
from projections.engine import View, ViewProjection
from streams.embedded import ProjectionSpec
from tests.support.notify_rows import decided as decided_row
from tests.support.polling import eventually
from tests.support.users_client import STRONG_PASSWORD

LOG = "users"


def spec_of(container: Container) -> ProjectionSpec:
    return next(spec for spec in container.specs if spec.name == "notifier")


@contextmanager
def notifier(container: Container, generation: int = 1) -> Iterator[ViewProjection[Any]]:
    spec = spec_of(container)
    view = spec.make_view(generation)
    assert isinstance(view, View)
    try:
        projection = spec.make_projection(view)
        assert isinstance(projection, ViewProjection)
        yield projection
    finally:
        view.datastore.close()


def users_log(container: Container) -> list[tuple[Any, Tracking]]:
    app = container.users_app
    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    return [(app.mapper.to_domain_event(n), Tracking(LOG, n.id)) for n in notifications]


def decided(container: Container) -> list[tuple[Any, ...]]:
    with container.pool.connection() as conn:
        return conn.execute(
            "SELECT n.user_id, n.kind, d.channel, d.address, d.state FROM notify.notifications n "
            "LEFT JOIN notify.deliveries d ON d.notification_id = n.id "
            "ORDER BY n.id, d.id"
        ).fetchall()


def delivery_ids(container: Container) -> list[UUID]:
    with container.pool.connection() as conn:
        return [row[0] for row in conn.execute("SELECT id FROM notify.deliveries").fetchall()]


def outcome_events(container: Container) -> list[tuple[str, int, str]]:
    """(delivery, attempt, outcome) of every event on the notifications log."""
    app = container.notifications.app
    events = [
        app.mapper.to_domain_event(n)
        for n in app.recorder.select_notifications(start=1, limit=10_000)
    ]
    recorded = [e for e in events if isinstance(e, DeliveryOutcome.Recorded)]
    assert recorded == events
    return [(str(e.delivery_id), e.attempt, e.outcome) for e in recorded]


def mail_to(container: Container, address: str) -> list[str]:
    return [m["subject"] for m in container.mailbox.messages(address, limit=100)]


def some_accounts(container: Container) -> tuple[UUID, str, UUID, str]:
    """An admin makes a seller of one new account and deactivates another."""
    users = container.user_commands
    admin = users.create_admin(f"admin-{uuid4().hex[:8]}@example.com", STRONG_PASSWORD, "Admin")
    seller, other = uuid4(), uuid4()
    seller_email = f"seller-{seller.hex[:8]}@example.com"
    other_email = f"other-{other.hex[:8]}@example.com"
    users.register(seller, seller_email, STRONG_PASSWORD, "Sam Seller")
    users.request_password_reset(seller_email)
    users.grant_role(seller, Role.SELLER, admin.id)
    users.register(other, other_email, STRONG_PASSWORD, "Olive Other")
    users.deactivate(other, "fraud", admin.id)
    return seller, seller_email, other, other_email


def test_each_event_decides_once_however_often_it_is_delivered(container: Container) -> None:
    with notifier(container) as projection:  # made before the events: it starts at 0
        seller, seller_email, other, other_email = some_accounts(container)
        log = users_log(container)
        for event, tracking in log:
            projection.process_event(event, tracking)
            projection.process_event(event, tracking)
        once = decided(container)
        for event, tracking in log:  # the whole log again, and in one batch
            projection.process_event(event, tracking)
        with projection.view.batch(LOG):
            for event, tracking in log:
                projection.process_event(event, tracking)
        assert decided(container) == once

    kinds = Counter((user_id, kind, channel) for user_id, kind, channel, _, _ in once)
    assert kinds == {
        (seller, "verify_email", "email"): 1,
        (seller, "reset_password", "email"): 1,
        (seller, "role_changed", "email"): 1,
        (seller, "role_changed", "in_app"): 1,
        # Decided on the account as each event left it, not as it is now: the
        # verification of an account deactivated since still went out then.
        (other, "verify_email", "email"): 1,
        (other, "account_deactivated", "email"): 1,
    } | {key: n for key, n in kinds.items() if key[0] not in (seller, other)}

    deliver_all(container.notifications.deliverers)
    deliver_all(container.notifications.deliverers)  # nothing left: nothing sent twice
    assert sorted(mail_to(container, seller_email)) == [
        "Reset your password",
        "Verify your email address",
        "You are now a seller",
    ]
    assert sorted(mail_to(container, other_email)) == [
        "Verify your email address",
        "Your account has been deactivated",
    ]
    assert [item.title for item in container.notifications.inbox.page(seller, None, 10)] == [
        "Your roles changed"
    ]
    assert {state for *_, state in decided(container)} == {"sent"}
    # Each final outcome is an event on the notifications log, once.
    recorded = outcome_events(container)
    assert sorted(recorded) == sorted(
        (str(delivery), 1, "sent") for delivery in delivery_ids(container)
    )


class Killed(BaseException):
    """The worker process dying: not an ``Exception``, so nothing in it catches it."""


def email_worker(container: Container, now: datetime) -> Callable[[Any, timedelta], Deliverer]:
    """Makes a new process's email delivery loop (its own queue with a short lease,
    its own log) with a sender and a clock ``offset`` after ``now``."""

    def worker(sender: Any, offset: timedelta) -> Deliverer:
        return Deliverer(
            Channel.EMAIL,
            queue=PostgresDeliveryQueue(container.pool, container.conninfo, lease_seconds=0.2),
            log=PostgresDeliveryLog(container.pool),
            sender=sender,
            renderer=Renderer(),
            suppressions=container.notifications.suppressions,
            clock=lambda: now + offset,
            outcome_events=OutcomeEvents(container.notifications.app),
        )

    return worker


class KilledOnSend:
    def send(self, outgoing: Outgoing) -> str:
        raise Killed(outgoing.address)


def test_a_worker_killed_between_intent_and_send_sends_once_after_its_restart(
    container: Container,
) -> None:
    with notifier(container) as projection:
        user_id = uuid4()
        email = f"killed-{user_id.hex[:8]}@example.com"
        container.user_commands.register(user_id, email, STRONG_PASSWORD, "Kim Killed")
        for event, tracking in users_log(container):
            projection.process_event(event, tracking)
    mailbox = container.notifications.mailbox
    worker = email_worker(container, utc_now())

    with pytest.raises(Killed):
        worker(KilledOnSend(), timedelta(0)).run_once(wait_seconds=0)
    [(_, _, _, _, state)] = [row for row in decided(container) if row[0] == user_id]
    assert state == "sending"  # the intent is recorded; no outcome
    assert mail_to(container, email) == []

    # Restarted at once: the lease hides it from a second worker meanwhile.
    assert worker(mailbox, timedelta(seconds=1)).run_once(wait_seconds=0) == 0
    # After the lease and the in-flight guard: sent, once.
    time.sleep(0.3)
    restarted = worker(mailbox, timedelta(seconds=31))
    assert restarted.run_once(wait_seconds=0) == 1
    assert restarted.run_once(wait_seconds=0) == 0
    assert mail_to(container, email) == ["Verify your email address"]
    with container.pool.connection() as conn:
        attempts = conn.execute(
            "SELECT a.attempt, a.outcome FROM notify.attempts a "
            "JOIN notify.deliveries d ON d.id = a.delivery_id "
            "WHERE d.address = %s ORDER BY a.attempt",
            (email,),
        ).fetchall()
    assert attempts == [(1, None), (2, "sent")]  # the killed attempt stays on the record
    assert [(attempt, outcome) for _, attempt, outcome in outcome_events(container)] == [
        (2, "sent")
    ]


class KilledOnThirdSend:
    """A provider that accepts two messages; the worker dies while sending the third."""

    def __init__(self) -> None:
        self.accepted: list[str] = []

    def send(self, outgoing: Outgoing) -> str:
        if len(self.accepted) == 2:
            raise Killed(outgoing.address)
        self.accepted.append(outgoing.address)
        return f"provider-{len(self.accepted)}"


def test_a_worker_killed_mid_batch_repeats_no_message_a_provider_accepted(
    container: Container,
) -> None:
    """A provider is called once per message: what it accepted before the worker died
    is recorded as sent, so the next worker sends only the message in hand."""
    addresses = []
    with notifier(container) as projection:
        for n in range(3):
            user_id = uuid4()
            addresses.append(f"batch-{n}-{user_id.hex[:8]}@example.com")
            container.user_commands.register(user_id, addresses[-1], STRONG_PASSWORD, "Bo Batch")
        for event, tracking in users_log(container):
            projection.process_event(event, tracking)
    worker = email_worker(container, utc_now())

    provider = KilledOnThirdSend()
    with pytest.raises(Killed):
        worker(provider, timedelta(0)).run_once(wait_seconds=0)
    # The two the provider accepted are on the record; the third is in hand.
    assert sorted(row[4] for row in decided(container)) == ["sending", "sent", "sent"]

    time.sleep(0.3)  # the lease and the in-flight guard run out
    mailbox = container.notifications.mailbox
    assert worker(mailbox, timedelta(seconds=31)).run_once(wait_seconds=0) == 1
    (resent,) = [a for a in addresses if a not in provider.accepted]
    assert mail_to(container, resent) == ["Verify your email address"]
    for accepted in provider.accepted:
        assert mail_to(container, accepted) == []  # not sent a second time
    assert {row[4] for row in decided(container)} == {"sent"}


def test_a_redecided_event_after_a_crash_before_commit_decides_the_same_rows(
    container: Container,
) -> None:
    """The notifier killed before its transaction commits decides again from
    scratch; the ids come from the event, so a decision that did commit is kept once."""
    with notifier(container) as projection:
        user_id = uuid4()
        container.user_commands.register(
            user_id, f"twice-{user_id.hex[:8]}@example.com", STRONG_PASSWORD, "Tess Twice"
        )
        log = users_log(container)
        for event, tracking in log:
            projection.process_event(event, tracking)
        first = decided(container)
    with notifier(container, generation=2) as fresh:  # its tracking lost: all again
        for event, tracking in log:
            fresh.process_event(event, tracking)
    assert decided(container) == first


def test_accounts_made_before_the_notifier_first_runs_are_told(container: Container) -> None:
    """A fresh database: `shop migrate` made the notifier's view, then the write API
    took sign-ups before any worker ran it (the scaled mode starts them apart)."""
    user_id = uuid4()
    email = f"early-{user_id.hex[:8]}@example.com"
    container.user_commands.register(user_id, email, STRONG_PASSWORD, "Ean Early")
    container.start_projections()
    assert eventually(lambda: mail_to(container, email), "the early account's mail") == [
        "Verify your email address"
    ]


class Hanging:
    """A provider that stops answering."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def send(self, outgoing: Outgoing) -> str:
        self.release.wait(30)
        raise TransientFailure("timed out")


def test_a_channel_that_hangs_holds_back_no_other(container: Container) -> None:
    phone_user, now = uuid4(), utc_now()
    email = f"both-{phone_user.hex[:8]}@example.com"
    sms_then_mail = decided_row(
        container.pool,
        Kind.ORDER_SHIPPED,
        phone_user,
        now,
        channels=frozenset({Channel.SMS, Channel.EMAIL}),
        email=email,
        phone="+447700900123",
        context={"carrier": "DHL", "tracking_number": "JD1", "link": "http://shop/o"},
    )
    assert {d.channel for d in sms_then_mail.deliveries} == {Channel.SMS, Channel.EMAIL}
    hanging = Hanging()
    notifications = container.notifications
    email_worker = next(d for d in notifications.deliverers if d.channel is Channel.EMAIL)
    notifications.deliverers = [
        email_worker,
        Deliverer(
            Channel.SMS,
            queue=notifications.queue,
            log=notifications.log,
            sender=hanging,
            renderer=Renderer(),
            suppressions=notifications.suppressions,
            clock=utc_now,
        ),
    ]
    notifications.start_workers()
    try:
        assert eventually(lambda: mail_to(container, email), "the mail, SMS hanging") == [
            "Your order is on its way"
        ]
    finally:
        hanging.release.set()
        notifications.close()

"""The deliverer's paths other than "sent", on the real Postgres queue and delivery
log, with the real renderer, suppression list and mailbox: a permanent failure
fails at once; a transient one is retried with backoff up to the bound, then
fails; a suppressed address is never sent to; quiet hours hold a delivery back
through the queue; a template that cannot render fails at once
(commands/notifications/delivery.py)."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.notifications.delivery import Backoff, Deliverer, deliver_all
from commands.notifications.outcomes import OutcomeEvents
from commands.notifications.ports import Outgoing, PermanentFailure, Sender, TransientFailure
from commands.notifications.rendering import TEMPLATES, Renderer
from commands.ports import Clock
from domain.notifications import Channel, Kind
from infra.wiring.process import Container
from infra.wiring.shared import utc_now
from tests.integration.test_notifier import mail_to, outcome_events
from tests.support.notify_rows import decided, delivery_on
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

SHIPPED = {"carrier": "DHL", "tracking_number": "JD014600", "link": "http://shop/orders/1"}
EMAIL_ONLY = frozenset({Channel.EMAIL})


class Refusing:
    """A provider that refuses every message with ``failure``; counts the calls."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure
        self.calls: list[UUID] = []

    def send(self, outgoing: Outgoing) -> str:
        self.calls.append(outgoing.delivery_id)
        raise self.failure


def deliverer(
    container: Container,
    sender: Sender,
    *,
    channel: Channel = Channel.EMAIL,
    clock: Clock = utc_now,
    backoff: Backoff = Backoff(),
    renderer: Renderer | None = None,
) -> Deliverer:
    """One channel's delivery loop on the container's queue, log and suppressions."""
    notifications = container.notifications
    return Deliverer(
        channel,
        queue=notifications.queue,
        log=notifications.log,
        sender=sender,
        renderer=renderer or Renderer(),
        suppressions=notifications.suppressions,
        clock=clock,
        backoff=backoff,
        outcome_events=OutcomeEvents(notifications.app),
    )


def shipped_mail(container: Container, email: str | None = None) -> UUID:
    """An order-shipped notification by email only; its delivery."""
    email = email or f"shopper-{uuid4().hex[:8]}@example.com"
    decision = decided(
        container.pool,
        Kind.ORDER_SHIPPED,
        uuid4(),
        utc_now(),
        channels=EMAIL_ONLY,
        email=email,
        context=SHIPPED,
    )
    return delivery_on(decision, Channel.EMAIL)


def attempts(container: Container, delivery: UUID) -> list[tuple[int, str | None, str | None]]:
    with container.pool.connection() as conn:
        rows = conn.execute(
            "SELECT attempt, outcome, error FROM notify.attempts WHERE delivery_id = %s "
            "ORDER BY attempt",
            (delivery,),
        ).fetchall()
    return [(attempt, outcome, error) for attempt, outcome, error in rows]


def delivery_row(container: Container, delivery: UUID) -> dict[str, Any]:
    with container.pool.connection() as conn:
        cursor = conn.execute(
            "SELECT state, attempts, not_before, last_error FROM notify.deliveries WHERE id = %s",
            (delivery,),
        )
        names = [column.name for column in cursor.description or []]
        row = cursor.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def test_a_permanent_failure_fails_at_once_and_is_not_retried(container: Container) -> None:
    delivery = shipped_mail(container)
    provider = Refusing(PermanentFailure("invalid address"))
    worker = deliverer(container, provider)

    assert worker.run_once(0) == 1
    assert worker.run_once(0) == 0  # not offered again

    assert provider.calls == [delivery]
    assert attempts(container, delivery) == [(1, "failed", "invalid address")]
    assert delivery_row(container, delivery)["state"] == "failed"
    assert outcome_events(container) == [(str(delivery), 1, "failed")]


def test_a_transient_failure_is_retried_with_backoff_then_given_up(container: Container) -> None:
    delivery = shipped_mail(container)
    provider = Refusing(TransientFailure("throttled"))
    backoff = Backoff(max_attempts=3, base_seconds=0.05, cap_seconds=0.3)
    worker = deliverer(container, provider, backoff=backoff)

    for attempt in (1, 2, 3):
        # Each retry waits out its backoff in the queue: taken again once due.
        assert eventually(lambda: worker.run_once(0), f"attempt {attempt}", timeout=10) == 1
        row = delivery_row(container, delivery)
        if attempt < 3:
            assert row["state"] == "retrying"
            started = started_at(container, delivery, attempt)
            bound = timedelta(seconds=min(backoff.cap_seconds, backoff.base_seconds * 2**attempt))
            # Full jitter: due again within the attempt's bound (and the time it took).
            assert started <= row["not_before"] <= started + bound + timedelta(seconds=0.5)
    time.sleep(backoff.cap_seconds + 0.1)
    assert worker.run_once(0) == 0  # given up: never offered again

    assert len(provider.calls) == 3
    assert attempts(container, delivery) == [
        (1, "retrying", "throttled"),
        (2, "retrying", "throttled"),
        (3, "failed", "gave up after 3 attempts: throttled"),
    ]
    assert delivery_row(container, delivery)["state"] == "failed"
    assert outcome_events(container) == [(str(delivery), 3, "failed")]  # the final one only


class FailingOnce:
    """A provider throttling the first message, then taking it."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, outgoing: Outgoing) -> str:
        self.calls += 1
        if self.calls == 1:
            raise TransientFailure("throttled")
        return "provider-1"


def test_a_retry_goes_out_when_the_deliverers_clock_is_behind_the_databases(
    container: Container,
) -> None:
    """Hosts' clocks differ: decided and delivered on a clock a minute behind the
    database's, the retry is sent once its backoff has passed on that clock."""
    behind = timedelta(minutes=1)
    decision = decided(
        container.pool,
        Kind.ORDER_SHIPPED,
        uuid4(),
        utc_now() - behind,
        channels=EMAIL_ONLY,
        context=SHIPPED,
    )
    delivery = delivery_on(decision, Channel.EMAIL)
    provider = FailingOnce()
    backoff = Backoff(max_attempts=3, base_seconds=0.05, cap_seconds=0.1)
    worker = deliverer(container, provider, clock=lambda: utc_now() - behind, backoff=backoff)

    assert worker.run_once(0) == 1  # throttled
    assert eventually(lambda: worker.run_once(0), "the retry", timeout=10) == 1

    assert attempts(container, delivery) == [(1, "retrying", "throttled"), (2, "sent", None)]


def started_at(container: Container, delivery: UUID, attempt: int) -> datetime:
    with container.pool.connection() as conn:
        row = conn.execute(
            "SELECT started_at FROM notify.attempts WHERE delivery_id = %s AND attempt = %s",
            (delivery, attempt),
        ).fetchone()
    assert row is not None
    started: datetime = row[0]
    return started


# --- the suppression list ---------------------------------------------------------------


def test_a_suppressed_address_gets_a_suppressed_outcome_and_no_mail(container: Container) -> None:
    address = "Bounced.Once@Example.com"
    container.notifications.suppressions.suppress("bounced.once@example.com", "bounce", False)
    decision = decided(
        container.pool, Kind.ORDER_SHIPPED, uuid4(), utc_now(), email=address, context=SHIPPED
    )
    email, in_app = (delivery_on(decision, c) for c in (Channel.EMAIL, Channel.IN_APP))

    deliver_all(container.notifications.deliverers)
    deliver_all(container.notifications.deliverers)

    assert mail_to(container, address) == []
    assert attempts(container, email) == [(1, "suppressed", "address on the suppression list")]
    assert delivery_row(container, email)["state"] == "suppressed"
    assert delivery_row(container, in_app)["state"] == "sent"  # the list is of mail addresses
    assert sorted(outcome_events(container)) == sorted(
        [(str(email), 1, "suppressed"), (str(in_app), 1, "sent")]
    )


def test_a_marketing_only_suppression_still_lets_account_and_order_mail_through(
    container: Container,
) -> None:
    address = f"complained-{uuid4().hex[:8]}@example.com"
    container.notifications.suppressions.suppress(address, "complaint", True)
    user_id, now = uuid4(), utc_now()
    everything = {"order_updates_email": True, "marketing_email": True}

    def mail(kind: Kind, context: dict[str, Any]) -> UUID:
        decision = decided(
            container.pool,
            kind,
            user_id,
            now,
            channels=EMAIL_ONLY,
            email=address,
            context=context,
            preferences=everything,
        )
        return delivery_on(decision, Channel.EMAIL)

    reset = mail(
        Kind.RESET_PASSWORD,
        {"link": "http://shop/reset?token=t", "token": "t", "expires_at": now.isoformat()},
    )
    shipped = mail(Kind.ORDER_SHIPPED, SHIPPED)
    reply = mail(Kind.REVIEW_REPLY, {"product_id": str(uuid4()), "reply": "Thanks!", "link": "x"})

    deliver_all(container.notifications.deliverers)

    assert sorted(mail_to(container, address)) == [
        "Reset your password",
        "Your order is on its way",
    ]
    states = {d: delivery_row(container, d)["state"] for d in (reset, shipped, reply)}
    assert states == {reset: "sent", shipped: "sent", reply: "suppressed"}


# --- quiet hours ------------------------------------------------------------------------


def test_quiet_hours_hold_an_sms_back_through_the_queue_until_they_end(
    container: Container,
) -> None:
    """Decided an hour into the shopper's two-hour quiet hours (in UTC, their zone):
    the SMS waits for the window's end, the mail goes at once. The window ended a
    minute ago by the database's clock, so the queue hands the SMS over; the
    deliverer's own (injected) clock reads a second before the end, so it offers
    the SMS back to the queue for that second, and sends it once its clock is past
    the end. A deliverer's clock behind the database's must not hold it forever.
    """
    window_ends = utc_now().replace(second=0, microsecond=0) - timedelta(minutes=1)
    decided_at = window_ends - timedelta(hours=1)
    quiet = {
        "order_updates_sms": True,
        "quiet_hours_start": (window_ends - timedelta(hours=2)).strftime("%H:%M"),
        "quiet_hours_end": window_ends.strftime("%H:%M"),
    }
    phone, email = "+447700900123", f"quiet-{uuid4().hex[:8]}@example.com"
    decision = decided(
        container.pool,
        Kind.ORDER_SHIPPED,
        uuid4(),
        decided_at,
        channels=frozenset({Channel.SMS, Channel.EMAIL}),
        email=email,
        phone=phone,
        context=SHIPPED,
        preferences=quiet,
    )
    sms, mail = (delivery_on(decision, c) for c in (Channel.SMS, Channel.EMAIL))
    assert delivery_row(container, sms)["not_before"] == window_ends
    assert delivery_row(container, mail)["not_before"] == decided_at

    clock = [window_ends - timedelta(seconds=1)]
    worker = deliverer(container, container.mailbox, channel=Channel.SMS, clock=lambda: clock[0])

    assert worker.run_once(0) == 0  # taken, and offered back for the second left
    assert container.mailbox.messages(phone, channel="sms") == []
    assert delivery_row(container, sms)["state"] == "queued"
    assert attempts(container, sms) == []

    clock[0] = window_ends + timedelta(seconds=1)
    assert worker.run_once(0) == 0  # the queue holds it back meanwhile
    assert eventually(lambda: worker.run_once(0), "the SMS after the window", timeout=10) == 1
    [message] = container.mailbox.messages(phone, channel="sms")
    assert "DHL" in message["body"]
    assert attempts(container, sms) == [(1, "sent", None)]


# --- templates --------------------------------------------------------------------------

BROKEN_SMS = {
    "a syntax error": "{% block sms %}Shipped {% if %}{% endblock %}",
    "a value the context lacks": "{% block sms %}Shipped, {{ parcel_weight }} kg{% endblock %}",
    "a filter on the wrong value": "{% block sms %}Shipped for {{ carrier | money }}{% endblock %}",
}


@pytest.mark.parametrize("edit", BROKEN_SMS.values(), ids=BROKEN_SMS.keys())
def test_a_template_that_cannot_render_fails_at_once_and_holds_back_no_other(
    container: Container, tmp_path: Path, edit: str
) -> None:
    """A person edited the shipped SMS so that it cannot render: that delivery fails
    with the reason, the delivered notice in the same batch still goes."""
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    (templates / "en" / "order_shipped.jinja").write_text(edit)
    phone = "+447700900124"
    sms = frozenset({Channel.SMS})

    def text(kind: Kind, context: dict[str, Any]) -> UUID:
        decision = decided(
            container.pool, kind, uuid4(), utc_now(), channels=sms, phone=phone, context=context
        )
        return delivery_on(decision, Channel.SMS)

    shipped = text(Kind.ORDER_SHIPPED, SHIPPED)
    delivered = text(Kind.ORDER_DELIVERED, {"link": "http://shop/orders/2"})
    worker = deliverer(
        container, container.mailbox, channel=Channel.SMS, renderer=Renderer(templates)
    )

    assert worker.run_once(0) == 2
    assert worker.run_once(0) == 0

    [(attempt, outcome, error)] = attempts(container, shipped)
    assert (attempt, outcome) == (1, "failed")
    assert error is not None and error.startswith("template: ")
    assert attempts(container, delivered) == [(1, "sent", None)]
    assert len(container.mailbox.messages(phone, channel="sms")) == 1

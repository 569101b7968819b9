"""The notifications area forgets an erased person (ADR 0024), through the real
notifier, delivery workers and Postgres adapters: once it has seen ``User.Erased``,
none of the person's email address, phone number, name, shipping address or device
token is left in any of its tables (the in-app inbox, the devices, the decisions,
deliveries and attempts, the mailbox, the suppression list, the stream tickets, its
event log), another person's rows are exactly as they were, the event delivered
again changes nothing, and nothing is sent to the person afterwards: neither about
the erasure, nor about an order event that comes after it, nor on an operator's
resend, and no provider is ever handed an erased address."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from psycopg.sql import SQL, Identifier

from commands.notifications.delivery import deliver_all
from commands.notifications.ports import Device, Outgoing, PermanentFailure
from commands.notifications.tickets import issue
from commands.ordering.checkout_saga import CheckoutSaga
from domain.carts import cart_id_for
from domain.notifications import Channel, Kind
from domain.users import User, erased_email
from infra.postgres.devices import PostgresDevices
from infra.postgres.resends import PostgresResends
from infra.wiring.process import Container
from infra.wiring.shared import utc_now
from tests.integration.test_checkout_saga import ADMIN, product
from tests.integration.test_delivery_paths import SHIPPED, Refusing, deliverer
from tests.integration.test_notification_kinds import Person, Shop, followed
from tests.integration.test_notifier import notifier
from tests.support.notify_rows import decided
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.integration

EMAIL_ONLY = frozenset({Channel.EMAIL})
SMS_ON = {"order_updates_sms": True}
"""Order updates then go by email, SMS, push and in the app (push and in-app are on
by default)."""


@dataclass(frozen=True)
class Someone:
    """A registered account with a phone number and a push device, and the strings
    that are theirs alone."""

    id: UUID
    email: str
    name: str
    phone: str
    address: dict[str, str]
    token: str
    device: UUID

    @property
    def personal(self) -> list[str]:
        return [self.email, self.name, self.phone, self.address["line1"], self.address["city"]]

    @property
    def strings(self) -> list[str]:
        return [*self.personal, self.token]


def someone(container: Container, first: str, last: str, phone: str) -> Someone:
    user_id = uuid4()
    email = f"{first}.{last}-{user_id.hex[:8]}@example.com".lower()
    name = f"{first} {last}"
    address = {"name": name, "line1": f"7 {last} Row", "city": f"{last}ville", "country": "GB"}
    users = container.user_commands
    users.register(user_id, email, STRONG_PASSWORD, name)
    users.update_profile(
        user_id, {"phone": phone, "addresses": [address], "notification_preferences": SMS_ON}
    )
    token = f"device-token-{last}-{user_id.hex}"
    device = PostgresDevices(container.pool).register(Device(uuid4(), user_id, "fcm", token))
    return Someone(user_id, email, name, phone, address, token, device.id)


def order_for(shop: Shop, person: Someone) -> UUID:
    """An order of ``person``'s to their own address, confirmed, and told about."""
    container = shop.container
    product_id, _ = product(container, price="15.00", stock=5)
    order_id = uuid4()
    container.ordering.carts.add(cart_id_for(person.id), person.id, product_id, 1)
    container.ordering.carts.checkout(person.id, order_id, person.address, "pm_card_visa")
    shop.settle()
    return order_id


# --- every table of the notifications area ---------------------------------------------


def notification_tables(container: Container) -> list[tuple[str, str]]:
    """Every table of the area: its schema, the notifier's own (its tracking), the
    mailbox and its event log (the outcome of each delivery)."""
    with container.pool.connection() as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND (table_schema = 'notify' "
            "OR table_schema LIKE 'rm\\_notifier\\_g%%' OR (table_schema = 'public' "
            "AND table_name IN ('mailbox', 'notifications_events'))) ORDER BY 1, 2"
        ).fetchall()
    tables = [(str(schema), str(name)) for schema, name in rows]
    for table in ("inbox", "devices", "notifications", "deliveries", "attempts"):
        assert ("notify", table) in tables
    assert ("notify", "suppressions") in tables and ("notify", "stream_tickets") in tables
    assert ("public", "mailbox") in tables and ("public", "notifications_events") in tables
    return tables


def rows(container: Container) -> dict[str, set[str]]:
    """Each table's rows, as text (an event's stored state as it is stored)."""
    found: dict[str, set[str]] = {}
    with container.pool.connection() as conn:
        for schema, table in notification_tables(container):
            name = SQL("{0}.{1}").format(Identifier(schema), Identifier(table))
            if table.endswith("_events"):
                query = SQL("SELECT encode(t.state, 'escape') FROM {0} t").format(name)
            else:
                query = SQL("SELECT t::text FROM {0} t").format(name)
            found[f"{schema}.{table}"] = {str(row[0]) for row in conn.execute(query).fetchall()}
    return found


def found_in(container: Container, strings: list[str]) -> dict[str, set[str]]:
    """Each string of ``strings`` -> the tables that hold it (in any case)."""
    found: dict[str, set[str]] = {}
    for table, texts in rows(container).items():
        for text in texts:
            for string in strings:
                if string.lower() in text.lower():
                    found.setdefault(string, set()).add(table)
    return found


def not_of(before: dict[str, set[str]], markers: list[str]) -> dict[str, set[str]]:
    """The rows of ``before`` that name none of ``markers`` (another person's)."""
    return {
        table: {text for text in texts if not any(m.lower() in text.lower() for m in markers)}
        for table, texts in before.items()
    }


def markers_of(container: Container, person: Someone) -> list[str]:
    """What names a row as the person's: their id and strings, their device and the
    ids of their notifications and deliveries (an attempt names only its delivery)."""
    with container.pool.connection() as conn:
        ids = conn.execute(
            "SELECT n.id::text, d.id::text FROM notify.notifications n "
            "LEFT JOIN notify.deliveries d ON d.notification_id = n.id WHERE n.user_id = %s",
            (person.id,),
        ).fetchall()
    return [
        str(person.id),
        person.id.hex,
        str(person.device),
        *person.strings,
        *{i for row in ids for i in row if i is not None},
    ]


def deliveries_of(container: Container, user_id: UUID) -> list[tuple[Any, ...]]:
    with container.pool.connection() as conn:
        return conn.execute(
            "SELECT n.kind, d.channel, d.address, d.state, d.last_error "
            "FROM notify.notifications n JOIN notify.deliveries d ON d.notification_id = n.id "
            "WHERE n.user_id = %s ORDER BY n.decided_at, n.kind, d.channel",
            (user_id,),
        ).fetchall()


def notifications_of(container: Container, user_id: UUID) -> list[tuple[Any, ...]]:
    with container.pool.connection() as conn:
        return conn.execute(
            "SELECT id, trigger, kind FROM notify.notifications WHERE user_id = %s ORDER BY id",
            (user_id,),
        ).fetchall()


def apply_again(shop: Shop, *, only: type | None = None) -> None:
    """Every event of the logs the notifier follows given to it again, bypassing its
    tracking: as after a crash before its commit, or a redelivery."""
    projection = shop.notifier
    with projection.view.datastore.transaction(commit=True) as cursor:
        for app in followed(shop.container).values():
            for n in app.recorder.select_notifications(start=1, limit=10_000):
                event = app.mapper.to_domain_event(n)
                if only is None or isinstance(event, only):
                    projection.apply(event, cursor)


class Recording:
    """A provider that accepts everything, and keeps what it was given."""

    def __init__(self) -> None:
        self.given: list[Outgoing] = []

    def send(self, outgoing: Outgoing) -> str:
        self.given.append(outgoing)
        return f"recorded-{len(self.given)}"


@dataclass
class Erasure:
    shop: Shop
    grace: Someone
    other: Someone
    grace_order: UUID
    other_order: UUID
    failed: list[UUID]
    """Her shipping mail and in-app message that failed (email first)."""


@pytest.fixture
def erasure(container: Container, saga: CheckoutSaga) -> Iterator[Erasure]:
    """Two people, each with an order confirmed and told on every channel (email,
    SMS, push, in-app: delivered), a shipping mail still to go, a suppression and a
    stream ticket; one of them with a mail and an in-app message that failed with a
    reason quoting her address."""
    with notifier(container) as projection:  # made before the events: it starts at 0
        grace = someone(container, "Grace", "Forgetmenot", "+447700900771")
        other = someone(container, "Otto", "Keepsake", "+447700900772")
        shop = Shop(
            container, projection, saga, Person(grace.id, grace.email), Person(other.id, "")
        )
        shop.settle()
        grace_order, other_order = order_for(shop, grace), order_for(shop, other)
        deliver_all(container.notifications.deliverers)

        refused = PermanentFailure(f"550 5.1.1 <{grace.email}>: mailbox unavailable")
        failed = decided(
            container.pool,
            Kind.ORDER_SHIPPED,
            grace.id,
            utc_now(),
            email=grace.email,
            channels=frozenset({Channel.EMAIL, Channel.IN_APP}),
            context=SHIPPED,
        )
        deliverer(container, Refusing(refused)).run_once(wait_seconds=0)
        unavailable = Refusing(PermanentFailure("inbox unavailable"))
        deliverer(container, unavailable, channel=Channel.IN_APP).run_once(wait_seconds=0)

        orders = container.ordering.orders
        for order_id in (grace_order, other_order):
            orders.ship(ADMIN, order_id, "UPS", "1Z999")
        shop.settle()  # decided, not delivered yet

        suppressions = container.notifications.suppressions
        suppressions.suppress(grace.email.upper(), "complaint: abuse", marketing_only=True)
        suppressions.suppress(other.email, "bounce: Permanent/General", marketing_only=False)
        for person in (grace, other):
            issue(container.notifications.tickets, person.id, utc_now())
        yield Erasure(
            shop,
            grace,
            other,
            grace_order,
            other_order,
            [d.id for d in sorted(failed.deliveries, key=lambda d: d.channel != Channel.EMAIL)],
        )


def test_an_erased_person_is_forgotten_by_every_store_of_the_area(erasure: Erasure) -> None:
    shop, grace, other = erasure.shop, erasure.grace, erasure.other
    container = shop.container
    # Everything the test looks for is there to be found: it can fail.
    held = found_in(container, grace.strings)
    assert set(held) == set(grace.strings), held
    assert {
        "notify.deliveries",
        "notify.notifications",
        "notify.devices",
        "notify.suppressions",
        "notify.attempts",
        "public.mailbox",
    } <= set().union(*held.values())
    assert container.notifications.inbox.page(grace.id, None, 10) != []  # hers by her id
    assert {s for _, _, _, s, _ in deliveries_of(container, grace.id)} >= {"queued", "sent"}
    before = rows(container)
    others_rows = not_of(before, markers_of(container, grace))
    told = notifications_of(container, grace.id)

    container.user_commands.erase(grace.id, grace.id, password=STRONG_PASSWORD)
    shop.settle()

    assert found_in(container, grace.strings) == {}
    after = rows(container)
    for table, texts in others_rows.items():
        if not table.startswith("rm_"):  # the notifier's tracking moves on
            assert texts <= after[table], table  # another person's rows as they were
    assert set(found_in(container, other.strings)) == set(other.strings)
    # The erasure itself told nothing; the cancelled deliveries never go.
    assert notifications_of(container, grace.id) == told
    states = {
        (channel, state, error)
        for _, channel, _, state, error in deliveries_of(container, grace.id)
    }
    assert ("email", "suppressed", "recipient erased") in states
    assert {state for _, state, _ in states} <= {"sent", "failed", "suppressed"}
    addresses = {
        (channel, address) for _, channel, address, _, _ in deliveries_of(container, grace.id)
    }
    assert {a for c, a in addresses if c == "email"} == {erased_email(grace.id)}
    assert {a for c, a in addresses if c == "sms"} == {"[erased]"}
    assert container.notifications.inbox.page(grace.id, None, 10) == []
    assert PostgresDevices(container.pool).of_user(grace.id) == []
    assert container.notifications.inbox.page(other.id, None, 10) != []
    assert [d.id for d in PostgresDevices(container.pool).of_user(other.id)] == [other.device]
    assert container.notifications.suppressions.is_suppressed(other.email, marketing=False)

    # What was still to go goes for the other person only.
    mailbox = container.notifications.mailbox
    sent_before = {m["message_id"] for m in mailbox.messages(limit=1000)}
    deliver_all(container.notifications.deliverers)
    new = [m for m in mailbox.messages(limit=1000) if m["message_id"] not in sent_before]
    assert new and {m["recipient"] for m in new} <= {other.email, other.phone, str(other.device)}
    assert found_in(container, grace.strings) == {}


def test_the_erasure_delivered_again_changes_nothing(erasure: Erasure) -> None:
    shop, grace = erasure.shop, erasure.grace
    container = shop.container
    container.user_commands.erase(grace.id, ADMIN.user_id)
    shop.settle()
    deliver_all(container.notifications.deliverers)
    forgotten = rows(container)

    apply_again(shop, only=User.Erased)
    assert rows(container) == forgotten
    # Every event again, in one transaction: the earlier ones of hers now read as
    # erased and decide nothing; the other person's decide the rows they did.
    apply_again(shop)
    deliver_all(container.notifications.deliverers)
    assert rows(container) == forgotten


def test_an_order_event_after_the_erasure_sends_nothing(erasure: Erasure) -> None:
    """Read before the users log's erasure event (the logs are followed apart), the
    order event finds the account as the notifier last saw it, address and all: the
    key's erasure is what stops it."""
    shop, grace = erasure.shop, erasure.grace
    container = shop.container
    told = notifications_of(container, grace.id)
    container.user_commands.erase(grace.id, grace.id, password=STRONG_PASSWORD)
    container.ordering.orders.mark_delivered(ADMIN, erasure.grace_order)

    shop._deliver("ordering", shop.notifier.view.max_tracking_id("ordering") or 0)
    assert notifications_of(container, grace.id) == told  # the delivery: not decided
    shop.settle()  # then the erasure
    recording = Recording()
    for channel in Channel:
        deliverer(container, recording, channel=channel).run_once(wait_seconds=0)
    assert not [o for o in recording.given if o.user_id == grace.id]
    assert notifications_of(container, grace.id) == told
    assert found_in(container, grace.strings) == {}


def test_a_resend_of_an_erased_persons_failed_mail_goes_to_no_provider(
    erasure: Erasure,
) -> None:
    shop, grace = erasure.shop, erasure.grace
    container = shop.container
    container.user_commands.erase(grace.id, ADMIN.user_id)
    shop.settle()
    resends = PostgresResends(container.notifications.log, container.pool)
    assert [resends.state_of(d) for d in erasure.failed] == ["failed", "failed"]

    for delivery in erasure.failed:  # the mail to a blanked address, the message forgotten
        assert resends.resend(delivery, utc_now())
    recording = Recording()
    for channel in (Channel.EMAIL, Channel.IN_APP):
        deliverer(container, recording, channel=channel).run_once(wait_seconds=0)
    assert recording.given  # the other person's shipping mail and message went
    assert [o for o in recording.given if o.user_id == grace.id] == []
    assert [resends.state_of(d) for d in erasure.failed] == ["suppressed", "suppressed"]
    assert container.notifications.inbox.page(grace.id, None, 10) == []


def test_no_provider_is_handed_an_erased_address(container: Container) -> None:
    """A delivery to an erased address (however it came to be recorded) is
    suppressed before any provider sees it."""
    user_id = uuid4()
    failed = decided(
        container.pool, Kind.ORDER_SHIPPED, user_id, utc_now(), channels=EMAIL_ONLY, context=SHIPPED
    )
    with container.pool.connection() as conn:  # the policy never decides one
        conn.execute(
            "UPDATE notify.deliveries SET address = %s WHERE id = %s",
            (erased_email(user_id), failed.deliveries[0].id),
        )
    recording = Recording()
    assert deliverer(container, recording).run_once(wait_seconds=0) == 1
    assert recording.given == []
    resends = PostgresResends(container.notifications.log, container.pool)
    assert resends.state_of(failed.deliveries[0].id) == "suppressed"

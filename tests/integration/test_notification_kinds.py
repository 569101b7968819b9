"""Each kind the notifier decides from the ordering, inventory and reviews logs, from
the events the real commands and the checkout saga (sandbox gateway) write: decided
by the real notifier, delivered by the real deliverers (the local adapters), to the
right person, on the channels their preferences allow, once. The account kinds and
order confirmed, shipped and delivered are in test_notifier.py and the journey."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking

from commands.notifications.delivery import deliver_all
from commands.notifications.policy import NOTIFIER_LOGS
from commands.notifications.ports import Device
from commands.ordering.checkout_saga import CheckoutSaga
from domain.access import Principal
from domain.money import Money
from domain.notifications import Channel, Kind
from domain.reviews import review_id
from infra.payments.sandbox import CHALLENGE_PATH
from infra.postgres.devices import PostgresDevices
from infra.wiring.process import Container
from projections.engine import ViewProjection, apply_batch
from tests.integration.test_checkout_saga import (
    ADMIN,
    THREE_D_SECURE,
    checkout,
    product,
    run,
)
from tests.integration.test_notifier import decided, notifier, outcome_events
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.integration

PHONE = "+447700900123"
SHOPPER_PREFERENCES = {
    "order_updates_sms": True,  # off by default
    "order_updates_push": False,  # on by default, and the shopper has a device
    "marketing_email": True,  # off by default
}
"""The seller keeps the defaults: order updates by email, push and in the app."""


@dataclass(frozen=True)
class Person:
    id: UUID
    email: str

    def principal(self, *roles: str) -> Principal:
        return Principal(self.id, uuid4(), frozenset({"customer", *roles}))


@dataclass
class Shop:
    container: Container
    notifier: ViewProjection[Any]
    saga: CheckoutSaga
    shopper: Person
    seller: Person

    def settle(self) -> None:
        """The saga run until it has nothing left to do, then the notifier given each
        log's new events, a pull per log as the runners deliver them."""
        run(self.container, self.saga)
        for name in NOTIFIER_LOGS:
            self._deliver(name, self.notifier.view.max_tracking_id(name) or 0)

    def redeliver_everything(self) -> None:
        for name in NOTIFIER_LOGS:
            self._deliver(name, 0)

    def _deliver(self, name: str, after: int) -> None:
        app = followed(self.container)[name]
        found = app.recorder.select_notifications(
            start=after, limit=10_000, inclusive_of_start=False
        )
        deliveries = [(app.mapper.to_domain_event(n), Tracking(name, n.id)) for n in found]
        if deliveries:
            apply_batch(self.notifier.view, self.notifier, name, deliveries)

    def order(self, token: str = "pm_card_visa", *, quantity: int = 1, stock: int = 5) -> UUID:
        product_id, _ = product(self.container, price="15.00", stock=stock)
        order_id = checkout(self.container, product_id, quantity, token, customer=self.shopper.id)
        self.settle()
        return order_id

    def delivered(self) -> UUID:
        order_id = self.order()
        orders = self.container.ordering.orders
        orders.ship(ADMIN, order_id, "UPS", "1Z999")
        orders.mark_delivered(ADMIN, order_id)
        return order_id

    def return_requested(self) -> UUID:
        order_id = self.delivered()
        self.container.ordering.orders.request_return(
            self.shopper.principal(), order_id, "too small"
        )
        return order_id


def followed(container: Container) -> dict[str, Application[Any]]:
    """The logs the notifier follows, by name."""
    apps: list[Application[Any]] = [
        container.users_app,
        container.ordering.app,
        container.inventory_app,
        container.reviews_app,
    ]
    found = {app.name: app for app in apps}
    assert set(found) == set(NOTIFIER_LOGS)
    return found


def person(
    container: Container, label: str, phone: str | None = None, **preferences: Any
) -> Person:
    """A registered account, with a device for push."""
    user_id = uuid4()
    email = f"{label}-{user_id.hex[:8]}@example.com"
    container.user_commands.register(user_id, email, STRONG_PASSWORD, label.title())
    profile: dict[str, Any] = {"notification_preferences": preferences} if preferences else {}
    if phone is not None:
        profile["phone"] = phone
    if profile:
        container.user_commands.update_profile(user_id, profile)
    PostgresDevices(container.pool).register(Device(uuid4(), user_id, "fcm", f"token-{user_id}"))
    return Person(user_id, email)


@pytest.fixture
def shop(container: Container, saga: CheckoutSaga) -> Iterator[Shop]:
    with notifier(container) as projection:  # made before the events: it starts at 0
        shopper = person(container, "shopper", PHONE, **SHOPPER_PREFERENCES)
        seller = person(container, "seller")
        opened = Shop(container, projection, saga, shopper, seller)
        opened.settle()
        yield opened


# --- what each case does, and what its message must say --------------------------------


def out_of_stock(shop: Shop) -> str:
    shop.order(quantity=2, stock=1)
    return "not enough stock"


def declined_card(shop: Shop) -> str:
    shop.order("pm_card_chargeDeclinedInsufficientFunds")
    return "insufficient funds"


def three_d_secure(shop: Shop) -> str:
    shop.order(THREE_D_SECURE)
    return CHALLENGE_PATH  # the link to the bank's challenge


def cancelled_by_the_shopper(shop: Shop) -> str:
    order_id = shop.order()
    shop.container.ordering.orders.cancel_by_shopper(
        shop.shopper.principal(), order_id, "changed my mind"
    )
    return "changed my mind"


def return_approved(shop: Shop) -> str:
    shop.container.ordering.orders.approve_return(ADMIN, shop.return_requested())
    return "is approved"


def return_refused(shop: Shop) -> str:
    shop.container.ordering.orders.refuse_return(ADMIN, shop.return_requested(), "worn")
    return "worn"


def refunded(shop: Shop) -> str:
    order_id = shop.delivered()
    amount = Money.of("7.50", "EUR")
    shop.container.ordering.orders.refund(ADMIN, order_id, amount, "goodwill", "refund-1")
    return "€7.50"


def stock_below_its_threshold(shop: Shop) -> str:
    product_id, sku = product(shop.container, stock=5, seller=shop.seller.id)
    inventory = shop.container.inventory_commands
    inventory.set_low_stock_threshold(shop.seller.principal("seller"), sku, 3)
    checkout(shop.container, product_id, 2, "pm_card_visa", customer=shop.shopper.id)
    return sku


def a_sellers_reply(shop: Shop) -> str:
    product_id, _ = product(shop.container, seller=shop.seller.id)
    reviews = shop.container.review_commands
    reviews.write(shop.shopper.principal(), product_id, 4, "Comfy", "They fit well.")
    reply = "Thank you, glad they fit!"
    reviews.reply(shop.seller.principal("seller"), review_id(product_id, shop.shopper.id), reply)
    return reply


@dataclass(frozen=True)
class Case:
    kind: Kind
    act: Callable[[Shop], str]
    channels: frozenset[Channel]
    """The recipient's channels: those the kind may use that their preferences allow
    (push is never one: the shopper turned it off, low stock is not pushed)."""
    shopper_hears: tuple[Kind, ...]
    """Everything the shopper is told on the way, the kind itself included."""
    seller_hears: tuple[Kind, ...] = ()


EMAIL_SMS_IN_APP = frozenset({Channel.EMAIL, Channel.SMS, Channel.IN_APP})
EMAIL_IN_APP = frozenset({Channel.EMAIL, Channel.IN_APP})
DELIVERED = (Kind.ORDER_CONFIRMED, Kind.ORDER_SHIPPED, Kind.ORDER_DELIVERED)

CASES = [
    Case(Kind.ORDER_REJECTED, out_of_stock, EMAIL_SMS_IN_APP, (Kind.ORDER_REJECTED,)),
    Case(Kind.PAYMENT_FAILED, declined_card, EMAIL_SMS_IN_APP, (Kind.PAYMENT_FAILED,)),
    Case(
        Kind.PAYMENT_AUTHENTICATION,
        three_d_secure,
        EMAIL_SMS_IN_APP,
        (Kind.PAYMENT_AUTHENTICATION,),
    ),
    Case(
        Kind.ORDER_CANCELLED,
        cancelled_by_the_shopper,
        EMAIL_SMS_IN_APP,
        (Kind.ORDER_CONFIRMED, Kind.ORDER_CANCELLED),
    ),
    Case(Kind.RETURN_APPROVED, return_approved, EMAIL_IN_APP, (*DELIVERED, Kind.RETURN_APPROVED)),
    Case(Kind.RETURN_REFUSED, return_refused, EMAIL_IN_APP, (*DELIVERED, Kind.RETURN_REFUSED)),
    Case(
        Kind.REFUND_ISSUED,
        refunded,
        EMAIL_SMS_IN_APP,
        (*DELIVERED, Kind.REFUND_ISSUED),
    ),
    Case(
        Kind.LOW_STOCK,
        stock_below_its_threshold,
        EMAIL_IN_APP,
        (Kind.ORDER_CONFIRMED,),
        seller_hears=(Kind.LOW_STOCK,),
    ),
    Case(Kind.REVIEW_REPLY, a_sellers_reply, EMAIL_IN_APP, (Kind.REVIEW_REPLY,)),
]


# --- reading what was decided and sent -------------------------------------------------


def heard(container: Container, since: set[UUID]) -> dict[UUID, Counter[str]]:
    """The kinds each person was told about, beyond the notifications ``since``."""
    with container.pool.connection() as conn:
        rows = conn.execute("SELECT id, user_id, kind FROM notify.notifications").fetchall()
    told: dict[UUID, Counter[str]] = {}
    for notification_id, user_id, kind in rows:
        if notification_id not in since:
            told.setdefault(user_id, Counter())[kind] += 1
    return told


def notification_ids(container: Container) -> set[UUID]:
    with container.pool.connection() as conn:
        return {row[0] for row in conn.execute("SELECT id FROM notify.notifications")}


def deliveries_of(container: Container, kind: Kind) -> dict[UUID, tuple[UUID, str, str, str]]:
    """Delivery id -> (user, channel, address, state) of every delivery of ``kind``."""
    with container.pool.connection() as conn:
        rows = conn.execute(
            "SELECT d.id, n.user_id, d.channel, d.address, d.state FROM notify.deliveries d "
            "JOIN notify.notifications n ON n.id = d.notification_id WHERE n.kind = %s",
            (kind.value,),
        ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def sent_messages(container: Container, deliveries: set[UUID]) -> dict[UUID, tuple[str, str]]:
    """What the mailbox took for ``deliveries`` (email and SMS): id -> (channel, text)."""
    with container.pool.connection() as conn:
        rows = conn.execute(
            "SELECT message_id, channel, body FROM public.mailbox WHERE message_id = ANY(%s)",
            ([str(d) for d in deliveries],),
        ).fetchall()
    return {UUID(message_id): (channel, body) for message_id, channel, body in rows}


def addresses(shop: Shop, recipient: Person, channels: frozenset[Channel]) -> set[tuple[str, str]]:
    by_channel = {
        Channel.EMAIL: recipient.email,
        Channel.SMS: PHONE,
        Channel.IN_APP: str(recipient.id),
    }
    return {(channel.value, by_channel[channel]) for channel in channels}


@pytest.mark.parametrize("case", CASES, ids=[case.kind.value for case in CASES])
def test_each_kind_is_decided_from_the_real_events_for_the_right_person_once(
    shop: Shop, case: Case
) -> None:
    container = shop.container
    before = notification_ids(container)

    says = case.act(shop)
    shop.settle()

    told = heard(container, before)
    expected = {shop.shopper.id: Counter(case.shopper_hears)}
    if case.seller_hears:
        expected[shop.seller.id] = Counter(case.seller_hears)
    assert told == expected
    recipient = shop.seller if case.seller_hears else shop.shopper
    deliveries = deliveries_of(container, case.kind)
    assert {(user, channel, address) for user, channel, address, _ in deliveries.values()} == {
        (recipient.id, channel, address)
        for channel, address in addresses(shop, recipient, case.channels)
    }
    assert len(deliveries) == len(case.channels)

    # Every log delivered again from its start: nothing decided twice.
    once = decided(container)
    shop.redeliver_everything()
    assert decided(container) == once

    deliver_all(container.notifications.deliverers)
    deliver_all(container.notifications.deliverers)  # nothing left: nothing sent twice
    assert {state for *_, state in deliveries_of(container, case.kind).values()} == {"sent"}
    ids = set(deliveries)
    assert sorted(o for o in outcome_events(container) if UUID(o[0]) in ids) == sorted(
        (str(delivery), 1, "sent") for delivery in ids
    )
    # The message carries what the event said, on each channel that has text.
    texts = sent_messages(container, ids)
    assert {channel for channel, _ in texts.values()} == {
        c.value for c in case.channels - {Channel.IN_APP}
    }
    for channel, text in texts.values():
        assert says in text, (channel, text)
    inbox = container.notifications.inbox.page(recipient.id, None, 50)
    assert [item.kind for item in inbox].count(case.kind.value) == 1

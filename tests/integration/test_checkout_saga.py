"""The checkout saga against the real event stores and the sandbox gateway.

The saga is driven as the embedded runner drives it: events read from the ordering
and payments logs after the policy's tracked positions, a pull at a time (one batch,
tracked once its steps are done). A "crash" is a step that raises: the position is
not tracked, and the next run (the process coming back) delivers the pull again.
Whatever step failed, every order ends confirmed or rejected, stock and money moved
once, and compensation undid what a rejected or cancelled order held.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from commands.ordering.authentication_timeouts import AbandonedAuthentications
from commands.ordering.checkout_saga import CheckoutSaga
from commands.ordering.payment_gateway import (
    Authorized,
    Declined,
    GatewayRefused,
    GatewayUnavailable,
    PaymentGateway,
)
from commands.ordering.payments import PaymentCommands
from domain.access import Principal
from domain.carts import cart_id_for
from domain.inventory import StockItem, stock_item_id
from domain.money import Money
from domain.order_status import OrderStatus
from domain.orders import Order
from domain.payments import Payment, PaymentStatus, payment_id
from infra.payments.sandbox import CHALLENGE_PATH, SandboxGateway
from infra.wiring.process import Container
from infra.wiring.views import tracking_only_view
from projections.engine import apply_batch

pytestmark = pytest.mark.integration

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Lyon", "country": "FR"}


class Crash(RuntimeError):
    """The process died here."""


class CrashingGateway:
    """The sandbox, dying once after (or before) one of its calls."""

    def __init__(self, inner: PaymentGateway, call: str, *, after: bool = True) -> None:
        self.name = inner.name
        self._inner = inner
        self._call = call
        self._after = after
        self.crashed = False

    def __getattr__(self, call: str) -> Callable[..., Any]:
        method = getattr(self._inner, call)

        def maybe_crash(*args: Any, **kwargs: Any) -> Any:
            if call == self._call and not self.crashed and not self._after:
                self.crashed = True
                raise Crash(call)
            outcome = method(*args, **kwargs)
            if call == self._call and not self.crashed:
                self.crashed = True
                raise Crash(call)
            return outcome

        return maybe_crash


def make_saga(container: Container, payments: PaymentCommands, generation: int = 1) -> CheckoutSaga:
    """The saga over ``payments``; a new tracking ``generation`` delivers every event
    of its logs to it again."""
    return CheckoutSaga(
        tracking_only_view(container.conninfo, CheckoutSaga.name, generation),
        ordering=container.ordering.app,
        inventory=container.inventory_commands,
        payments=payments,
        payment_methods=container.ordering.payment_methods,
        clock=lambda: datetime.now(UTC),
    )


def run(container: Container, saga: CheckoutSaga, *, in_pulls: bool = True) -> int:
    """Deliver every event of the ordering and payments logs after the saga's tracked
    positions, including those its own steps add, until none is left; how many were
    delivered. ``in_pulls``: each log's new events as one batch, as the runners
    deliver them; else one by one."""
    delivered = 0
    while True:
        before = delivered
        for app in (container.ordering.app, container.ordering.payments_app):
            start = saga.view.max_tracking_id(app.name) or 0
            notifications = app.recorder.select_notifications(
                start=start, limit=10_000, inclusive_of_start=False
            )
            deliveries = [
                (app.mapper.to_domain_event(n), Tracking(app.name, n.id)) for n in notifications
            ]
            if in_pulls and deliveries:
                apply_batch(saga.view, saga, app.name, deliveries)
            else:
                for event, tracking in deliveries:
                    saga.process_event(event, tracking)
            delivered += len(deliveries)
        if delivered == before:
            return delivered


def product(
    container: Container, price: str = "20.00", stock: int = 5, seller: UUID = ADMIN.user_id
) -> tuple[UUID, str]:
    catalog = container.catalog_commands
    category = uuid4()
    catalog.create_category(ADMIN, category, "Shoes")
    product_id, sku = uuid4(), f"SKU-{uuid4().hex[:10].upper()}"
    catalog.create_product(ADMIN, product_id, seller, sku, "Shoe", price=Money.of(price, "EUR"))
    catalog.categorise(ADMIN, product_id, [category])
    catalog.publish(ADMIN, product_id)
    if stock:
        container.inventory_commands.receive(ADMIN, sku, stock)
    return product_id, sku


def checkout(
    container: Container,
    product_id: UUID,
    quantity: int,
    token: str,
    customer: UUID | None = None,
) -> UUID:
    customer, order_id = customer or uuid4(), uuid4()
    container.ordering.carts.add(cart_id_for(customer), customer, product_id, quantity)
    container.ordering.carts.checkout(customer, order_id, ADDRESS, token)
    return order_id


def stock(container: Container, sku: str) -> StockItem:
    item: object = container.inventory_app.repository.get(stock_item_id(sku))
    assert isinstance(item, StockItem)
    return item


def order(container: Container, order_id: UUID) -> Order:
    return container.ordering.app.get_order(order_id)


def payment(container: Container, order_id: UUID) -> Payment:
    found: object = container.ordering.payments_app.repository.get(payment_id(order_id))
    assert isinstance(found, Payment)
    return found


def gateway_calls(container: Container, operation: str) -> int:
    with container.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM public.payment_gateway_requests WHERE operation = %s",
            (operation,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_an_order_is_confirmed_with_stock_reserved_and_payment_authorized(
    container: Container, saga: CheckoutSaga
) -> None:
    product_id, sku = product(container)
    order_id = checkout(container, product_id, 2, "pm_card_visa")
    run(container, saga)
    assert order(container, order_id).status == OrderStatus.CONFIRMED
    assert stock(container, sku).reservations == {str(order_id): 2}
    assert payment(container, order_id).status == PaymentStatus.AUTHORIZED
    assert payment(container, order_id).authorized == Money.of("40.00", "EUR")
    assert container.ordering.payment_methods.token_for(order_id) is None  # forgotten


def test_a_declined_card_rejects_the_order_and_releases_the_stock(
    container: Container, saga: CheckoutSaga
) -> None:
    product_id, sku = product(container)
    order_id = checkout(container, product_id, 3, "pm_card_chargeDeclinedInsufficientFunds")
    run(container, saga)
    rejected = order(container, order_id)
    assert rejected.status == OrderStatus.REJECTED
    assert rejected.rejection_reason == "payment declined: Your card has insufficient funds."
    assert stock(container, sku).available == 5
    assert stock(container, sku).closed[str(order_id)] == "released"


def test_not_enough_stock_rejects_without_touching_the_payment(
    container: Container, saga: CheckoutSaga
) -> None:
    product_id, sku = product(container, stock=1)
    order_id = checkout(container, product_id, 2, "pm_card_visa")
    run(container, saga)
    rejected = order(container, order_id)
    assert rejected.status == OrderStatus.REJECTED
    assert rejected.rejection_reason is not None and "not enough stock" in rejected.rejection_reason
    assert stock(container, sku).available == 1
    assert container.ordering.payments.find(order_id) is None
    assert gateway_calls(container, "authorize") == 0


@pytest.mark.parametrize(
    ("call", "after"), [("authorize", True), ("authorize", False), ("void", True)]
)
def test_a_crash_at_a_payment_step_completes_on_restart_moving_money_once(
    container: Container, call: str, after: bool
) -> None:
    product_id, sku = product(container)
    # A confirmed order cancelled by its shopper exercises authorize and void.
    crashing = CrashingGateway(container.ordering.payments.gateway, call, after=after)
    payments = PaymentCommands(container.ordering.payments_app, crashing)
    saga = make_saga(container, payments)
    order_id = checkout(container, product_id, 2, "pm_card_visa")
    if call == "void":
        run(container, saga)
        customer = order(container, order_id).customer_id
        shopper = Principal(customer, uuid4(), frozenset({"customer"}))
        container.ordering.orders.cancel_by_shopper(shopper, order_id, "changed my mind")
    with pytest.raises(Crash):
        run(container, saga)
    assert crashing.crashed
    restarted = make_saga(container, payments)  # the process comes back
    run(container, restarted)
    assert run(container, restarted) == 0  # everything tracked
    final = order(container, order_id)
    money = payment(container, order_id)
    if call == "void":
        assert final.status == OrderStatus.CANCELLED
        assert money.status == PaymentStatus.VOIDED
        assert stock(container, sku).available == 5
        assert gateway_calls(container, "void") == 1
    else:
        assert final.status == OrderStatus.CONFIRMED
        assert money.status == PaymentStatus.AUTHORIZED
        assert stock(container, sku).reservations == {str(order_id): 2}
    assert gateway_calls(container, "authorize") == 1
    assert len(money.gateway_event_ids) == len(set(money.gateway_event_ids))


def test_redelivering_every_event_does_nothing_twice(
    container: Container, saga: CheckoutSaga
) -> None:
    product_id, sku = product(container)
    confirmed = checkout(container, product_id, 1, "pm_card_visa")
    declined = checkout(container, product_id, 1, "pm_card_chargeDeclined")
    run(container, saga)
    stock_version = stock(container, sku).version
    orders_version = {o: order(container, o).version for o in (confirmed, declined)}
    # A fresh tracking generation: the whole log is delivered again.
    again = make_saga(container, container.ordering.payments, generation=2)
    assert run(container, again) > 0
    assert stock(container, sku).version == stock_version
    assert {o: order(container, o).version for o in (confirmed, declined)} == orders_version
    assert gateway_calls(container, "authorize") == 2


def test_ship_return_and_refund_move_stock_and_money_once(
    container: Container, saga: CheckoutSaga
) -> None:
    product_id, sku = product(container, price="15.00")
    order_id = checkout(container, product_id, 2, "pm_card_visa")
    run(container, saga)
    orders = container.ordering.orders
    orders.ship(ADMIN, order_id, "UPS", "1Z999")
    orders.ship(ADMIN, order_id, "UPS", "1Z999")  # a retried request
    run(container, saga)
    assert stock(container, sku).on_hand == 3
    assert payment(container, order_id).captured == Money.of("30.00", "EUR")
    customer = Principal(order(container, order_id).customer_id, uuid4(), frozenset({"customer"}))
    orders.mark_delivered(ADMIN, order_id)
    orders.request_return(customer, order_id, "too small")
    orders.approve_return(ADMIN, order_id)
    orders.mark_returned(ADMIN, order_id)
    run(container, saga)
    assert stock(container, sku).on_hand == 5
    # Returned goods come back once, even when the event is redelivered.
    saga.restock(order_id)
    assert stock(container, sku).on_hand == 5
    orders.refund(ADMIN, order_id, Money.of("10.00", "EUR"), "goodwill", "key-1")
    orders.refund(ADMIN, order_id, Money.of("10.00", "EUR"), "goodwill", "key-1")  # retried
    assert order(container, order_id).refunded == Money.of("10.00", "EUR")
    orders.refund(ADMIN, order_id, None, "the rest", "key-2")
    final = order(container, order_id)
    assert final.refunded == final.captured == Money.of("30.00", "EUR")
    assert final.status == OrderStatus.REFUNDED
    assert payment(container, order_id).refunded == Money.of("30.00", "EUR")
    assert payment(container, order_id).refunded.amount == Decimal("30.00")


def test_partitions_share_the_orders_between_them(container: Container) -> None:
    product_id, sku = product(container, stock=20)
    orders = [checkout(container, product_id, 1, "pm_card_visa") for _ in range(8)]
    partitions = [
        CheckoutSaga(
            tracking_only_view(container.conninfo, f"{CheckoutSaga.name}_{n}", 1),
            ordering=container.ordering.app,
            inventory=container.inventory_commands,
            payments=container.ordering.payments,
            payment_methods=container.ordering.payment_methods,
            clock=lambda: datetime.now(UTC),
            partition=n,
            partitions=2,
        )
        for n in range(2)
    ]
    run(container, partitions[0])
    decided = {o for o in orders if order(container, o).status == OrderStatus.CONFIRMED}
    assert decided == {o for o in orders if o.int % 2 == 0}
    run(container, partitions[1])
    assert all(order(container, o).status == OrderStatus.CONFIRMED for o in orders)
    assert gateway_calls(container, "authorize") == len(orders)
    assert stock(container, sku).reserved == len(orders)


def test_an_admin_cancelling_a_shipped_order_refunds_the_capture_once(
    container: Container, saga: CheckoutSaga
) -> None:
    product_id, sku = product(container, price="11.00")
    order_id = checkout(container, product_id, 2, "pm_card_visa")
    run(container, saga)
    container.ordering.orders.ship(ADMIN, order_id, "DHL", "LOST-1")
    container.ordering.orders.cancel_by_admin(ADMIN, order_id, "parcel lost by the carrier")
    run(container, saga)
    saga.compensate(order_id)  # redelivered
    cancelled = order(container, order_id)
    assert cancelled.status == OrderStatus.CANCELLED
    assert cancelled.refunded == cancelled.captured == Money.of("22.00", "EUR")
    assert payment(container, order_id).status == PaymentStatus.REFUNDED
    assert gateway_calls(container, "refund") == 1
    assert stock(container, sku).on_hand == 3  # shipped: the units left, none come back


# --- 3-D Secure: the order awaits the shopper's authentication ---------------------------

THREE_D_SECURE = "pm_card_threeDSecure2Required"


def sandbox(container: Container) -> SandboxGateway:
    gateway = container.ordering.payments.gateway
    assert isinstance(gateway, SandboxGateway)
    return gateway


def awaiting(container: Container, saga: CheckoutSaga, quantity: int = 2) -> tuple[UUID, str, str]:
    """An order of ``quantity`` units paid with the 3-D Secure card, awaiting the
    shopper's authentication: (order id, SKU, the payment's reference)."""
    product_id, sku = product(container)
    order_id = checkout(container, product_id, quantity, THREE_D_SECURE)
    run(container, saga)
    waiting = order(container, order_id)
    assert waiting.status == OrderStatus.AWAITING_AUTHENTICATION
    assert waiting.authentication is not None
    reference = waiting.authentication["payment_reference"]
    assert reference is not None
    assert waiting.authentication["approval_url"] == (
        f"{container.settings.public_url}{CHALLENGE_PATH}/{reference}"
    )
    assert stock(container, sku).reservations == {str(order_id): quantity}  # held meanwhile
    assert payment(container, order_id).status == PaymentStatus.ACTION_REQUIRED
    return order_id, sku, reference


def test_an_authenticated_payment_confirms_the_order_awaiting_it(
    container: Container, saga: CheckoutSaga
) -> None:
    order_id, sku, reference = awaiting(container, saga)
    payments = container.ordering.payments
    assert payments.check_authentication(order_id) is None  # not yet: nothing new
    assert isinstance(sandbox(container).authenticate(reference, approve=True), Authorized)
    assert payments.check_authentication(order_id) is not None
    assert payments.check_authentication(order_id) is None  # asked again: once
    run(container, saga)
    confirmed = order(container, order_id)
    assert (confirmed.status, confirmed.payment_reference) == (OrderStatus.CONFIRMED, reference)
    assert payment(container, order_id).status == PaymentStatus.AUTHORIZED
    assert stock(container, sku).reservations == {str(order_id): 2}
    assert container.ordering.payment_methods.token_for(order_id) is None
    container.ordering.orders.ship(ADMIN, order_id, "UPS", "1Z3DS")  # the ledger follows
    assert payment(container, order_id).captured == Money.of("40.00", "EUR")


def test_a_failed_authentication_rejects_the_order_and_releases_the_stock(
    container: Container, saga: CheckoutSaga
) -> None:
    order_id, sku, reference = awaiting(container, saga)
    sandbox(container).authenticate(reference, approve=False)
    # The first answer counts: approving afterwards changes nothing.
    assert isinstance(sandbox(container).authenticate(reference, approve=True), Declined)
    container.ordering.payments.check_authentication(order_id)
    run(container, saga)
    rejected = order(container, order_id)
    assert rejected.status == OrderStatus.REJECTED
    assert rejected.rejection_reason == (
        "payment declined: The card issuer could not authenticate the payment."
    )
    assert stock(container, sku).available == 5
    assert stock(container, sku).closed[str(order_id)] == "released"
    assert payment(container, order_id).failure_code == "payment_intent_authentication_failure"
    assert gateway_calls(container, "void") == 0  # nothing authorized, nothing to void


class Listed:
    """The orders read model's answer, without running its projection."""

    def __init__(self, *order_ids: UUID) -> None:
        self.order_ids = order_ids
        self.asked: list[datetime] = []

    def since_before(self, moment: datetime) -> list[UUID]:
        self.asked.append(moment)
        return list(self.order_ids)


def test_an_abandoned_authentication_times_out_voided_and_released(
    container: Container, saga: CheckoutSaga
) -> None:
    order_id, sku, _ = awaiting(container, saga)
    now = datetime.now(UTC)
    listed = Listed(order_id)
    sweep = AbandonedAuthentications(
        container.ordering.app,
        container.ordering.payments,
        listed,
        lambda: now,
        timedelta(minutes=15),
    )
    assert sweep.sweep() == 1
    assert listed.asked == [now - timedelta(minutes=15)]
    assert sweep.sweep() == 0  # swept again (another process, the next round): nothing
    run(container, saga)
    rejected = order(container, order_id)
    assert rejected.status == OrderStatus.REJECTED
    assert rejected.rejection_reason == "the payment was not authenticated within 15 minutes"
    assert payment(container, order_id).status == PaymentStatus.VOIDED
    assert gateway_calls(container, "void") == 1
    assert stock(container, sku).available == 5
    assert container.ordering.payment_methods.token_for(order_id) is None


def test_an_authentication_that_ended_unreported_is_recorded_by_the_sweep_not_rejected(
    container: Container, saga: CheckoutSaga
) -> None:
    order_id, _, reference = awaiting(container, saga)
    sandbox(container).authenticate(reference, approve=True)  # the shopper never came back
    sweep = AbandonedAuthentications(
        container.ordering.app,
        container.ordering.payments,
        Listed(order_id),
        lambda: datetime.now(UTC),
        timedelta(minutes=15),
    )
    assert sweep.sweep() == 0
    run(container, saga)
    assert order(container, order_id).status == OrderStatus.CONFIRMED


@pytest.mark.parametrize(
    ("failure", "rejected"),
    [
        (GatewayRefused("PayPal order 5O190127TN364715T is SAVED"), True),
        (GatewayUnavailable("the gateway is down"), False),
    ],
)
def test_a_gateway_that_cannot_tell_rejects_only_when_it_refuses(
    container: Container,
    saga: CheckoutSaga,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    rejected: bool,
) -> None:
    """A gateway that refuses to say how the payment stands (GatewayRefused): the
    order is rejected as abandoned. A gateway that is down may know of an
    authentication: the order waits for the next sweep."""
    order_id, sku, _ = awaiting(container, saga)

    def cannot_tell(reference: str) -> None:
        raise failure

    monkeypatch.setattr(sandbox(container), "retrieve", cannot_tell)
    sweep = AbandonedAuthentications(
        container.ordering.app,
        container.ordering.payments,
        Listed(order_id),
        lambda: datetime.now(UTC),
        timedelta(minutes=15),
    )
    assert sweep.sweep() == int(rejected)
    run(container, saga)
    expected = OrderStatus.REJECTED if rejected else OrderStatus.AWAITING_AUTHENTICATION
    assert order(container, order_id).status == expected
    assert stock(container, sku).available == (5 if rejected else 3)


def test_authentication_steps_delivered_twice_do_nothing_twice(
    container: Container, saga: CheckoutSaga
) -> None:
    order_id, sku, reference = awaiting(container, saga)
    sandbox(container).authenticate(reference, approve=True)
    payments = container.ordering.payments
    payments.check_authentication(order_id)
    # The same ending reported again, as a webhook would.
    authorized = sandbox(container).retrieve(reference)
    assert payments.record(authorized) is None
    run(container, saga)
    versions = (order(container, order_id).version, payment(container, order_id).version)
    stock_version = stock(container, sku).version
    again = make_saga(container, payments, generation=2)  # both logs delivered again
    assert run(container, again) > 0
    assert (order(container, order_id).version, payment(container, order_id).version) == versions
    assert stock(container, sku).version == stock_version
    assert gateway_calls(container, "authorize") == 1


def test_a_crash_after_the_authorization_still_lets_the_order_await(
    container: Container,
) -> None:
    product_id, _ = product(container)
    crashing = CrashingGateway(container.ordering.payments.gateway, "authorize")
    payments = PaymentCommands(container.ordering.payments_app, crashing)
    order_id = checkout(container, product_id, 1, THREE_D_SECURE)
    with pytest.raises(Crash):
        run(container, make_saga(container, payments))
    run(container, make_saga(container, payments))  # the ledger replays the first answer
    waiting = order(container, order_id)
    assert waiting.status == OrderStatus.AWAITING_AUTHENTICATION
    assert waiting.authentication is not None
    assert waiting.authentication["approval_url"] is not None
    assert gateway_calls(container, "authorize") == 1


# --- refunds made at the payment provider ------------------------------------------------


def test_a_refund_made_outside_the_shop_is_recorded_on_the_order_once(
    container: Container, saga: CheckoutSaga
) -> None:
    product_id, _ = product(container, price="10.00")
    order_id = checkout(container, product_id, 3, "pm_card_visa")
    run(container, saga)
    orders = container.ordering.orders
    orders.ship(ADMIN, order_id, "UPS", "1ZOUT")
    orders.mark_delivered(ADMIN, order_id)
    # Ours, through the API (the order records it itself): never again by the saga.
    orders.refund(ADMIN, order_id, Money.of("5.00", "EUR"), "goodwill", "key-ours")
    run(container, saga)
    assert order(container, order_id).refunded == Money.of("5.00", "EUR")
    # Made in the provider's dashboard, reported by its webhook, twice.
    reference = payment(container, order_id).reference
    assert reference is not None
    outside = sandbox(container).refund(reference, Money.of("7.00", "EUR"), "dashboard-1")
    assert container.ordering.payments.record(outside) is not None
    assert container.ordering.payments.record(outside) is None
    run(container, saga)
    refunded = order(container, order_id)
    assert refunded.refunded == Money.of("12.00", "EUR")
    assert refunded.refund_ids[-1] == outside.refund_id
    assert refunded.timeline[-1]["note"] == (
        "partially refunded 7.00 EUR: refunded at the payment provider"
    )
    assert refunded.status == OrderStatus.DELIVERED
    version = refunded.version
    saga.record_provider_refund(payment(container, order_id).id, outside.refund_id, outside.amount)
    assert order(container, order_id).version == version  # redelivered: nothing

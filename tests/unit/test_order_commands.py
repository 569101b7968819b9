"""OrderCommands on the in-memory store: the shopper's cancellation and returns, the
admins' lifecycle (ship with its capture, deliver, returns, refunds) against the fake
gateway, and who may do what. The checkout saga runs where a command's effects on
stock or money follow from the log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.ordering.checkout_saga import CheckoutSaga
from commands.ordering.orders import RETURN_WINDOW, OrderCommands
from commands.ordering.payment_gateway import GatewayRefused, GatewayUnavailable
from domain.errors import NotPermitted, UnknownEntity
from domain.money import Money
from domain.order_fields import InvalidOrder
from domain.order_status import OrderStatus, OrderTransitionNotAllowed
from domain.orders import ReturnWindowClosed
from domain.payments import InvalidPayment, PaymentStatus, RefundExceedsCaptured
from tests.unit.ordering_fakes import ADMIN, MemoryShop, customer, memory_shop


@pytest.fixture
def shop() -> MemoryShop:
    return memory_shop()


@pytest.fixture
def saga(shop: MemoryShop) -> CheckoutSaga:
    return shop.saga()


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def confirmed(
    shop: MemoryShop, saga: CheckoutSaga, price: str = "15.00", quantity: int = 2
) -> tuple[UUID, str]:
    """A confirmed order of ``quantity`` units at ``price`` (stock 5): (id, SKU)."""
    product_id, sku = shop.product(price=price)
    order_id = shop.checkout(product_id, quantity)
    shop.run(saga)
    assert shop.order(order_id).status == OrderStatus.CONFIRMED
    return order_id, sku


def delivered(shop: MemoryShop, saga: CheckoutSaga) -> UUID:
    """A delivered order of 2 x 15.00 EUR, captured at shipment."""
    order_id, _ = confirmed(shop, saga)
    shop.orders.ship(ADMIN, order_id, "UPS", "1Z1")
    shop.orders.mark_delivered(ADMIN, order_id)
    shop.run(saga)
    return order_id


# --- the shopper ----------------------------------------------------------------------------


def test_a_shopper_cancels_and_the_saga_releases_the_stock_and_voids_the_payment(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    order_id, sku = confirmed(shop, saga)
    written = shop.orders.cancel_by_shopper(shop.shopper(order_id), order_id, "")
    assert written.position is not None
    cancelled = shop.order(order_id)
    assert cancelled.status == OrderStatus.CANCELLED
    assert cancelled.cancellation is not None
    assert cancelled.cancellation["reason"] == "cancelled by the customer"
    assert not cancelled.cancellation["by_admin"]
    # Cancelled again (a retried request): nothing new.
    assert shop.orders.cancel_by_shopper(shop.shopper(order_id), order_id, "").position is None
    shop.run(saga)
    assert shop.stock(sku).available == 5
    assert shop.stock(sku).closed[str(order_id)] == "released"
    assert shop.payment(order_id).status == PaymentStatus.VOIDED
    assert shop.gateway.executed["void"] == 1


def test_a_shopper_cancels_before_the_saga_decided(shop: MemoryShop, saga: CheckoutSaga) -> None:
    product_id, sku = shop.product()
    order_id = shop.checkout(product_id, 1)
    shop.orders.cancel_by_shopper(shop.shopper(order_id), order_id, "changed my mind")
    shop.run(saga)
    assert shop.order(order_id).status == OrderStatus.CANCELLED
    assert shop.stock(sku).reservations == {}
    assert shop.gateway.calls == []  # no payment was ever asked for


def test_a_shopper_cannot_cancel_once_shipped(shop: MemoryShop, saga: CheckoutSaga) -> None:
    order_id, _ = confirmed(shop, saga)
    shop.orders.ship(ADMIN, order_id, "UPS", "1Z1")
    with pytest.raises(OrderTransitionNotAllowed):
        shop.orders.cancel_by_shopper(shop.shopper(order_id), order_id, "too late")
    assert shop.order(order_id).status == OrderStatus.SHIPPED


@pytest.mark.parametrize(
    "command",
    [
        lambda orders, who, order_id: orders.cancel_by_shopper(who, order_id, "mine now"),
        lambda orders, who, order_id: orders.request_return(who, order_id, "mine now"),
        lambda orders, who, order_id: orders.confirm_payment(who, order_id),
    ],
    ids=["cancel", "return", "confirm_payment"],
)
def test_another_shoppers_order_is_not_found(
    shop: MemoryShop, saga: CheckoutSaga, command: Callable[[OrderCommands, Any, UUID], object]
) -> None:
    order_id = delivered(shop, saga)
    version = shop.order(order_id).version
    for order in (order_id, uuid4()):  # someone else's, and none at all: the same answer
        with pytest.raises(UnknownEntity, match="no such order"):
            command(shop.orders, customer(), order)
    assert shop.order(order_id).version == version


def test_a_return_is_requested_within_the_window_of_delivery(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    late, on_time = delivered(shop, saga), delivered(shop, saga)
    shop.orders.request_return(shop.shopper(on_time), on_time, "too small")
    assert shop.order(on_time).status == OrderStatus.RETURN_REQUESTED
    shop.clock.offset = RETURN_WINDOW + timedelta(minutes=1)
    with pytest.raises(ReturnWindowClosed):
        shop.orders.request_return(shop.shopper(late), late, "too small")
    assert shop.order(late).status == OrderStatus.DELIVERED


# --- admins -------------------------------------------------------------------------------


ADMIN_COMMANDS: dict[str, Callable[[OrderCommands, Any, UUID], object]] = {
    "cancel": lambda orders, who, order_id: orders.cancel_by_admin(who, order_id, "fraud"),
    "ship": lambda orders, who, order_id: orders.ship(who, order_id, "UPS", "1Z1"),
    "deliver": lambda orders, who, order_id: orders.mark_delivered(who, order_id),
    "approve_return": lambda orders, who, order_id: orders.approve_return(who, order_id),
    "refuse_return": lambda orders, who, order_id: orders.refuse_return(who, order_id, "worn"),
    "returned": lambda orders, who, order_id: orders.mark_returned(who, order_id),
    "refund": lambda orders, who, order_id: orders.refund(who, order_id, None, "sorry", "k-1"),
}


@pytest.mark.parametrize("command", ADMIN_COMMANDS.values(), ids=ADMIN_COMMANDS.keys())
def test_the_admins_commands_need_the_admin_role_even_from_the_orders_customer(
    shop: MemoryShop, saga: CheckoutSaga, command: Callable[[OrderCommands, Any, UUID], object]
) -> None:
    order_id, _ = confirmed(shop, saga)
    calls = list(shop.gateway.calls)
    for who in (shop.shopper(order_id), customer()):
        with pytest.raises(NotPermitted):
            command(shop.orders, who, order_id)
    assert shop.order(order_id).status == OrderStatus.CONFIRMED
    assert shop.gateway.calls == calls


def test_shipping_captures_the_total_first_then_ships_once(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    order_id, sku = confirmed(shop, saga, price="15.00", quantity=2)
    written = shop.orders.ship(ADMIN, order_id, "UPS", "1Z999")
    assert [p.log for p in written.positions] == ["ordering", "payments"]
    assert shop.orders.ship(ADMIN, order_id, "UPS", "1Z999").position is None  # retried
    shipped = shop.order(order_id)
    assert (shipped.status, shipped.carrier, shipped.tracking_number) == (
        OrderStatus.SHIPPED,
        "UPS",
        "1Z999",
    )
    assert shipped.captured == eur("30.00")
    assert shop.payment(order_id).status == PaymentStatus.CAPTURED
    assert shipped.capture_ids == [shop.payment(order_id).capture_reference]
    assert shop.gateway.executed["capture"] == 1
    shop.run(saga)  # the saga commits the shipped units
    assert (shop.stock(sku).on_hand, shop.stock(sku).reserved) == (3, 0)


def test_only_a_confirmed_order_ships(shop: MemoryShop, saga: CheckoutSaga) -> None:
    product_id, _ = shop.product()
    placed = shop.checkout(product_id, 1)  # the saga has not decided it yet
    with pytest.raises(OrderTransitionNotAllowed):
        shop.orders.ship(ADMIN, placed, "UPS", "1Z1")
    cancelled, _ = confirmed(shop, saga)
    shop.orders.cancel_by_admin(ADMIN, cancelled, "out of stock after all")
    with pytest.raises(OrderTransitionNotAllowed):
        shop.orders.ship(ADMIN, cancelled, "UPS", "1Z1")
    assert shop.gateway.executed["capture"] == 0


@pytest.mark.parametrize(
    "failure", [GatewayUnavailable("timed out"), GatewayRefused("authorization expired")]
)
def test_a_capture_the_gateway_fails_leaves_the_order_unshipped(
    shop: MemoryShop, saga: CheckoutSaga, failure: Exception
) -> None:
    order_id, _ = confirmed(shop, saga)
    shop.gateway.fail_next("capture", failure)
    with pytest.raises(type(failure)):
        shop.orders.ship(ADMIN, order_id, "UPS", "1Z1")
    unshipped = shop.order(order_id)
    assert (unshipped.status, unshipped.captured) == (OrderStatus.CONFIRMED, eur("0"))
    assert shop.payment(order_id).status == PaymentStatus.AUTHORIZED
    shop.orders.ship(ADMIN, order_id, "UPS", "1Z1")  # tried again
    assert shop.order(order_id).captured == eur("30.00")


@pytest.mark.parametrize(
    ("carrier", "tracking_number"),
    [("UPS\nExpress", "1Z1"), ("UPS", "1Z\u20281"), ("UPS", "1" * 101)],
)
def test_a_malformed_shipment_is_refused_before_any_money_moves(
    shop: MemoryShop, saga: CheckoutSaga, carrier: str, tracking_number: str
) -> None:
    """The HTTP schema bounds the length and strips the ends, but a line break inside
    gets here: the order refuses it, and the payment must not be captured for an order
    that did not ship (cancelling it then would never refund the capture)."""
    order_id, _ = confirmed(shop, saga)
    with pytest.raises(InvalidOrder):
        shop.orders.ship(ADMIN, order_id, carrier, tracking_number)
    assert shop.gateway.executed["capture"] == 0
    assert shop.payment(order_id).status == PaymentStatus.AUTHORIZED
    shop.orders.cancel_by_admin(ADMIN, order_id, "cannot be shipped")
    shop.run(saga)
    assert shop.payment(order_id).status == PaymentStatus.VOIDED  # nothing kept


def test_a_free_order_ships_with_nothing_to_capture(shop: MemoryShop, saga: CheckoutSaga) -> None:
    order_id, sku = confirmed(shop, saga, price="0.00")
    written = shop.orders.ship(ADMIN, order_id, "UPS", "1Z0")
    assert [p.log for p in written.positions] == ["ordering"]
    assert shop.order(order_id).status == OrderStatus.SHIPPED
    assert shop.payments.find(order_id) is None
    assert shop.gateway.calls == []
    shop.run(saga)
    assert shop.stock(sku).on_hand == 3


def test_a_return_comes_back_into_stock_and_is_refunded_in_parts_once_each(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    order_id = delivered(shop, saga)
    sku = next(iter(shop.order(order_id).skus))
    shop.orders.request_return(shop.shopper(order_id), order_id, "too small")
    shop.orders.approve_return(ADMIN, order_id)
    shop.orders.mark_returned(ADMIN, order_id)
    shop.run(saga)
    assert shop.stock(sku).on_hand == 5  # the two units are back
    first = shop.orders.refund(ADMIN, order_id, eur("10.00"), "goodwill", "key-1")
    assert [p.log for p in first.positions] == ["ordering", "payments"]
    shop.orders.refund(ADMIN, order_id, eur("10.00"), "goodwill", "key-1")  # retried
    assert shop.order(order_id).refunded == eur("10.00")
    assert shop.gateway.executed["refund"] == 1
    shop.orders.refund(ADMIN, order_id, None, "the rest", "key-2")
    refunded = shop.order(order_id)
    assert (refunded.status, refunded.refunded) == (OrderStatus.REFUNDED, eur("30.00"))
    assert shop.payment(order_id).status == PaymentStatus.REFUNDED
    shop.run(saga)  # the payments' Refunded events are ours: recorded once already
    assert shop.order(order_id).refund_ids == list(shop.payment(order_id).refunds)


def test_a_refund_is_refused_before_money_moves(shop: MemoryShop, saga: CheckoutSaga) -> None:
    order_id = delivered(shop, saga)
    with pytest.raises(RefundExceedsCaptured):
        shop.orders.refund(ADMIN, order_id, eur("30.01"), "too much", "key-1")
    with pytest.raises(InvalidPayment):
        shop.orders.refund(ADMIN, order_id, Money.of("1.00", "USD"), "wrong money", "key-2")
    with pytest.raises(InvalidOrder):
        shop.orders.refund(ADMIN, order_id, eur("1.00"), "  ", "key-3")
    confirmed_id, _ = confirmed(shop, saga)
    with pytest.raises(OrderTransitionNotAllowed):  # before delivery: cancel instead
        shop.orders.refund(ADMIN, confirmed_id, None, "sorry", "key-4")
    assert shop.gateway.executed["refund"] == 0
    assert shop.order(order_id).refunded == eur("0")


def test_a_refused_return_may_still_be_refunded(shop: MemoryShop, saga: CheckoutSaga) -> None:
    order_id = delivered(shop, saga)
    shop.orders.request_return(shop.shopper(order_id), order_id, "changed my mind")
    shop.orders.refuse_return(ADMIN, order_id, "worn")
    assert shop.order(order_id).return_refusal_reason == "worn"
    shop.orders.refund(ADMIN, order_id, eur("5.00"), "goodwill", "key-1")
    assert shop.order(order_id).status == OrderStatus.RETURN_REFUSED
    assert shop.order(order_id).refunded == eur("5.00")


def test_an_admin_cancelling_a_shipped_order_has_the_capture_refunded_once(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    order_id, sku = confirmed(shop, saga, price="11.00")
    shop.orders.ship(ADMIN, order_id, "DHL", "LOST-1")
    shop.orders.cancel_by_admin(ADMIN, order_id, "parcel lost by the carrier")
    shop.run(saga)
    saga.compensate(order_id)  # redelivered
    cancelled = shop.order(order_id)
    assert cancelled.status == OrderStatus.CANCELLED
    assert cancelled.refunded == cancelled.captured == eur("22.00")
    assert shop.gateway.executed["refund"] == 1
    assert shop.stock(sku).on_hand == 3  # shipped: the units left, none come back


def test_confirming_a_payment_needs_an_order_awaiting_it(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    order_id, _ = confirmed(shop, saga)
    with pytest.raises(OrderTransitionNotAllowed):
        shop.orders.confirm_payment(shop.shopper(order_id), order_id)

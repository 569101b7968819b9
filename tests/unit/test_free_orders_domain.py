"""Free items and free orders (ADR 14): a zero price is a price, an order with
nothing to pay is confirmed without a payment, and everything after confirmation
works with nothing captured and nothing to refund."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.carts import open_cart
from domain.lines import line
from domain.money import InvalidMoney, Money
from domain.order_fields import MAX_REASON, InvalidOrder, readable_reason, valid_reason
from domain.order_status import OrderTransitionNotAllowed
from domain.orders import FREE_ORDER_NOTE, Order, place_order
from domain.payments import InvalidPayment, RefundExceedsCaptured, positive

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
CUSTOMER = UUID(int=1)
ADMIN = UUID(int=2)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def order_of(*prices: str) -> Order:
    lines = [line(uuid4(), f"SKU-{n}", 2, eur(price)) for n, price in enumerate(prices)]
    return place_order(uuid4(), CUSTOMER, lines, {"name": "Ann"}, T0)


def replay(order: Order, events: Sequence[Any]) -> None:
    rebuilt = None
    for e in events:
        rebuilt = e.mutate(rebuilt)
    assert rebuilt == order


@pytest.mark.parametrize("written", ["0", "0.00", "-0", "-0.00", " 0 "])
def test_every_spelling_of_zero_is_the_zero_price(written: str) -> None:
    assert Money.of(written, "EUR") == Money.zero("EUR")
    assert Money.of(written, "EUR").to_dict() == {"amount": "0.00", "currency": "EUR"}


@pytest.mark.parametrize("written", ["-0.01", "-1"])
def test_a_negative_price_stays_refused(written: str) -> None:
    with pytest.raises(InvalidMoney):
        Money.of(written, "EUR")


def test_a_free_line_goes_into_a_cart_and_out_as_an_order_of_nothing_to_pay() -> None:
    cart = open_cart(CUSTOMER)
    product = uuid4()
    cart.add_line(product, "SKU-FREE", 3, eur("-0"))
    assert cart.recheck_prices({"SKU-FREE": eur("0")}) == []  # the same price
    order = place_order(uuid4(), CUSTOMER, cart.check_out(uuid4()), {"name": "Ann"}, T0)
    assert order.total == eur("0")
    assert order.timeline[0]["note"] == "order placed: 0.00 EUR"


def test_an_order_with_nothing_to_pay_is_confirmed_without_a_payment_once() -> None:
    order = order_of("0", "0.00")
    order.confirm_without_payment(T0)
    order.confirm_without_payment(T0)  # redelivered: nothing new
    assert order.status == "confirmed"
    assert order.payment_reference is None
    assert order.timeline[-1] == {"status": "confirmed", "at": T0, "note": FREE_ORDER_NOTE}
    events = order.collect_events()
    assert [type(e).__name__ for e in events] == ["Placed", "ConfirmedWithoutPayment"]
    replay(order, events)


def test_an_order_with_something_to_pay_is_confirmed_by_its_payment_only() -> None:
    mixed = order_of("0", "4.50")  # a free line does not make the order free
    assert mixed.total == eur("9.00")
    with pytest.raises(InvalidOrder):
        mixed.confirm_without_payment(T0)
    assert mixed.status == "placed"
    mixed.confirm("pi_1", T0)
    assert mixed.status == "confirmed"


def test_a_decided_free_order_is_not_confirmed_again() -> None:
    rejected = order_of("0")
    rejected.reject("not enough stock: SKU-0", T0)
    with pytest.raises(OrderTransitionNotAllowed):
        rejected.confirm_without_payment(T0)
    cancelled = order_of("0")
    cancelled.cancel_by_shopper(CUSTOMER, T0)
    with pytest.raises(OrderTransitionNotAllowed):
        cancelled.confirm_without_payment(T0)


def test_a_free_order_ships_delivers_and_comes_back_with_nothing_to_refund() -> None:
    order = order_of("0")
    order.confirm_without_payment(T0)
    order.ship("UPS", "1Z-FREE", ADMIN, T0)
    order.mark_delivered(T0 + timedelta(days=1))
    order.request_return(CUSTOMER, "not needed", T0 + timedelta(days=2), timedelta(days=30))
    order.approve_return(ADMIN, T0 + timedelta(days=2))
    order.mark_returned(T0 + timedelta(days=5))
    assert order.status == "returned"
    assert (order.captured, order.refunded) == (eur("0"), eur("0"))
    # Nothing was paid: any refund is refused, as the refund command refuses it.
    with pytest.raises(RefundExceedsCaptured):
        order.record_refund("re_1", eur("0.01"), "goodwill", T0)
    with pytest.raises(InvalidPayment):
        positive(order.captured - order.refunded, "EUR", "refund")
    assert [entry["status"] for entry in order.timeline] == [
        "placed",
        "confirmed",
        "shipped",
        "delivered",
        "return_requested",
        "return_approved",
        "returned",
    ]
    replay(order, order.collect_events())


@pytest.mark.parametrize("by_admin", [False, True])
def test_a_confirmed_free_order_may_be_cancelled(by_admin: bool) -> None:
    order = order_of("0")
    order.confirm_without_payment(T0)
    if by_admin:
        order.ship("UPS", "1Z-LOST", ADMIN, T0)
        order.cancel_by_admin(ADMIN, "parcel lost", T0)
    else:
        order.cancel_by_shopper(CUSTOMER, T0)
    assert order.status == "cancelled"
    assert order.captured == eur("0")


@pytest.mark.parametrize(
    "text",
    [
        "payment declined: " + "x" * 600,
        "the gateway said:\nno\ttoday\x00\u2028really\ud800",
        "short",
    ],
)
def test_any_text_becomes_a_reason_a_rejection_accepts(text: str) -> None:
    reason = readable_reason(text)
    assert valid_reason(reason) == reason
    assert len(reason) <= MAX_REASON
    assert reason.split()[0] == text.split()[0]

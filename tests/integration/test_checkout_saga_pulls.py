"""The checkout saga placing a pull of orders together (one stock save, one decision
save): the outcome must be the one event by event gives, and an order changed by
someone else meanwhile is decided as it is then."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from commands.ordering.checkout_saga import CheckoutSaga
from commands.ordering.payment_gateway import AuthorizationOutcome
from commands.ordering.payments import PaymentCommands
from domain.access import Principal
from domain.inventory import stock_item_id
from domain.money import Money
from domain.order_status import OrderStatus
from domain.payments import Payment, PaymentStatus
from infra.wiring.process import Container
from tests.integration.test_checkout_saga import (
    checkout,
    gateway_calls,
    make_saga,
    order,
    payment,
    product,
    run,
    stock,
)

pytestmark = pytest.mark.integration

# Five units, eight shoppers; the third card is declined after its units were held.
CARDS = ["pm_card_visa"] * 2 + ["pm_card_chargeDeclined"] + ["pm_card_visa"] * 5


def outcomes(container: Container, orders: list[UUID], sku: str) -> list[tuple[str, str | None]]:
    """Each order's status and rejection reason, its product's SKU left out."""
    return [
        (str(o.status), o.rejection_reason and o.rejection_reason.replace(sku, "the SKU"))
        for o in (order(container, i) for i in orders)
    ]


def test_a_pull_decides_each_order_as_event_by_event_would(
    container: Container, saga: CheckoutSaga
) -> None:
    one_product, one_sku = product(container, stock=5)
    one_by_one = [checkout(container, one_product, 1, card) for card in CARDS]
    run(container, saga, in_pulls=False)
    pull_product, pull_sku = product(container, stock=5)
    in_a_pull = [checkout(container, pull_product, 1, card) for card in CARDS]
    run(container, saga)

    decided = outcomes(container, in_a_pull, pull_sku)
    assert [status for status, _ in decided] == ["confirmed"] * 2 + ["rejected"] + [
        "confirmed"
    ] * 2 + ["rejected"] * 3
    assert decided[2][1] is not None and decided[2][1].startswith("payment declined")
    assert all(why is not None and "not enough stock" in why for _, why in decided[5:])
    assert decided == outcomes(container, one_by_one, one_sku)
    for sku in (one_sku, pull_sku):  # the declined order's units came back
        assert stock(container, sku).reserved == 4
        assert stock(container, sku).available == 1
    # The pull's reservations were one save (its orders interleave with their carts'
    # events in the log), where event by event made one per order.
    assert reservation_saves(container, one_sku) == 5
    assert reservation_saves(container, pull_sku) == 1
    # Only orders that held their units reached the gateway, each once.
    assert gateway_calls(container, "authorize") == 2 * 5
    for order_id in in_a_pull[5:]:
        assert order(container, order_id).payment_reference is None


def reservation_saves(container: Container, sku: str) -> int:
    """The transactions that recorded the SKU's reservations."""
    with container.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(DISTINCT xmin::text) FROM public.inventory_events "
            "WHERE originator_id = %s AND topic LIKE %s",
            (stock_item_id(sku), "%StockReserved"),
        ).fetchone()
    assert row is not None
    return int(row[0])


class CancelledMeanwhile(PaymentCommands):
    """The payments, with a shopper cancelling one order while the saga authorizes it."""

    def __init__(self, container: Container, victim: UUID) -> None:
        super().__init__(container.ordering.payments_app, container.ordering.payments.gateway)
        self._container = container
        self._victim = victim

    def authorize(
        self, order_id: UUID, amount: Money, token: str
    ) -> tuple[Payment, AuthorizationOutcome | None]:
        if order_id == self._victim:
            shopper = Principal(
                order(self._container, order_id).customer_id, uuid4(), frozenset({"customer"})
            )
            self._container.ordering.orders.cancel_by_shopper(shopper, order_id, "changed my mind")
        return super().authorize(order_id, amount, token)


def test_an_order_cancelled_while_its_pull_is_placed_stays_cancelled(
    container: Container,
) -> None:
    product_id, sku = product(container, stock=5)
    orders = [checkout(container, product_id, 1, "pm_card_visa") for _ in range(4)]
    victim = orders[1]
    saga = make_saga(container, CancelledMeanwhile(container, victim))
    try:
        run(container, saga)
    finally:
        saga.view.datastore.close()  # type: ignore[attr-defined]
    assert order(container, victim).status == OrderStatus.CANCELLED
    assert payment(container, victim).status == PaymentStatus.VOIDED
    assert [order(container, o).status for o in orders if o != victim] == [
        OrderStatus.CONFIRMED
    ] * 3
    assert stock(container, sku).reservations == {str(o): 1 for o in orders if o != victim}

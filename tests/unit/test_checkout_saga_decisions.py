"""The checkout saga's decisions on the in-memory store: events of the ordering and
payments logs fed to it directly, as a pull or one by one, against the fake gateway
and the real inventory. Placed orders are reserved, paid and confirmed, or rejected
with what they held released; 3-D Secure waits for the shopper; a free order needs
no payment; a redelivered event does nothing twice. A property drives the saga
through any interleaving of the two logs, redeliveries, gateway outages, shoppers
and admins, and checks that stock and money moved exactly once per order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.ordering.checkout_saga import CheckoutSaga
from commands.ordering.payment_gateway import GatewayUnavailable
from commands.ordering.payments import payment_key
from domain.carts import cart_id_for
from domain.errors import DomainError
from domain.money import Money
from domain.order_status import OrderStatus
from domain.orders import FREE_ORDER_NOTE, Order
from domain.payments import PaymentStatus
from domain.refusals import Refused
from projections.engine import Delivery
from tests.unit.ordering_fakes import (
    ADDRESS,
    ADMIN,
    DECLINED,
    OK,
    REFUSED,
    THREE_D_SECURE,
    MemoryShop,
    memory_shop,
)

S = OrderStatus


@pytest.fixture
def shop() -> MemoryShop:
    return memory_shop()


@pytest.fixture
def saga(shop: MemoryShop) -> CheckoutSaga:
    return shop.saga()


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def deliveries(shop: MemoryShop, log: str, after: int = 0, limit: int = 10_000) -> list[Delivery]:
    """The events of ``log`` after position ``after``, as the runners deliver them."""
    app = shop.ordering.app if log == "ordering" else shop.ordering.payments_app
    notifications = app.recorder.select_notifications(
        start=after, limit=limit, inclusive_of_start=False
    )
    return [(app.mapper.to_domain_event(n), Tracking(app.name, n.id)) for n in notifications]


def placed(shop: MemoryShop, order_id: UUID) -> Delivery:
    """The ``Order.Placed`` delivery of an order."""
    (found,) = [
        d
        for d in deliveries(shop, "ordering")
        if isinstance(d[0], Order.Placed) and d[0].originator_id == order_id
    ]
    return found


def reference(shop: MemoryShop, order_id: UUID) -> str:
    found = shop.payment(order_id).reference
    assert found is not None
    return found


# --- placing an order ------------------------------------------------------------------------


@pytest.mark.parametrize("in_pulls", [True, False], ids=["a pull", "one by one"])
def test_a_placed_order_is_reserved_authorized_and_confirmed(
    shop: MemoryShop, saga: CheckoutSaga, in_pulls: bool
) -> None:
    product_id, sku = shop.product(price="20.00")
    order_id = shop.checkout(product_id, 2)
    shop.run(saga, in_pulls=in_pulls)
    order = shop.order(order_id)
    assert order.status == S.CONFIRMED
    assert order.payment_reference == reference(shop, order_id)
    assert shop.stock(sku).reservations == {str(order_id): 2}
    paid = shop.payment(order_id)
    assert (paid.status, paid.authorized) == (PaymentStatus.AUTHORIZED, eur("40.00"))
    assert shop.gateway.executions == [("authorize", payment_key(order_id, "authorize"))]
    assert shop.payment_methods.token_for(order_id) is None  # forgotten once decided


@pytest.mark.parametrize("stock", [1, 0], ids=["too few", "never received"])
def test_stock_short_rejects_the_order_without_asking_for_a_payment(
    shop: MemoryShop, saga: CheckoutSaga, stock: int
) -> None:
    product_id, sku = shop.product(stock=stock)
    order_id = shop.checkout(product_id, 2)
    shop.run(saga)
    rejected = shop.order(order_id)
    assert rejected.status == S.REJECTED
    assert rejected.rejection_reason is not None
    assert rejected.rejection_reason.startswith("not enough stock")
    if stock:
        assert shop.stock(sku).available == stock and shop.stock(sku).reservations == {}
    assert shop.payments.find(order_id) is None
    assert shop.gateway.calls == []
    assert shop.payment_methods.token_for(order_id) is None


def test_a_pull_of_orders_takes_scarce_stock_in_log_order(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    product_id, sku = shop.product(stock=3)
    first, second, third = (shop.checkout(product_id, n) for n in (2, 2, 1))
    shop.run(saga)
    assert [shop.order(o).status for o in (first, second, third)] == [
        S.CONFIRMED,
        S.REJECTED,
        S.CONFIRMED,
    ]
    assert shop.stock(sku).reservations == {str(first): 2, str(third): 1}
    assert shop.stock(sku).available == 0


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (DECLINED, "payment declined: Your card was declined."),
        (REFUSED, "the payment could not be made: the gateway refused this payment method"),
    ],
)
def test_a_payment_that_fails_rejects_the_order_and_releases_its_stock(
    shop: MemoryShop, saga: CheckoutSaga, token: str, reason: str
) -> None:
    product_id, sku = shop.product()
    order_id = shop.checkout(product_id, 3, token)
    shop.run(saga)
    rejected = shop.order(order_id)
    assert (rejected.status, rejected.rejection_reason) == (S.REJECTED, reason)
    assert shop.stock(sku).available == 5
    assert shop.stock(sku).closed[str(order_id)] == "released"
    assert shop.gateway.executed["void"] == 0  # nothing was authorized
    assert shop.payment_methods.token_for(order_id) is None


def test_a_missing_payment_method_rejects_the_order(shop: MemoryShop, saga: CheckoutSaga) -> None:
    product_id, sku = shop.product()
    order_id = shop.checkout(product_id, 1)
    shop.payment_methods.forget(order_id)
    shop.run(saga)
    assert shop.order(order_id).rejection_reason == (
        "the payment method is missing: check out again"
    )
    assert shop.stock(sku).available == 5
    assert shop.gateway.calls == []


def test_a_gateway_that_is_down_fails_the_pull_which_decides_once_delivered_again(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    product_id, sku = shop.product()
    order_id = shop.checkout(product_id, 2)
    shop.gateway.fail_next("authorize")
    with pytest.raises(GatewayUnavailable):
        shop.run(saga)
    assert saga.view.max_tracking_id("ordering") is None  # not tracked: delivered again
    assert shop.order(order_id).status == S.PLACED
    assert shop.stock(sku).reservations == {str(order_id): 2}  # held for the retry
    shop.run(saga)
    assert shop.order(order_id).status == S.CONFIRMED
    assert shop.stock(sku).reservations == {str(order_id): 2}
    assert shop.gateway.executed["authorize"] == 1


def test_a_free_order_is_confirmed_without_a_payment(shop: MemoryShop, saga: CheckoutSaga) -> None:
    product_id, sku = shop.product(price="0.00")
    order_id = shop.checkout(product_id, 2)
    shop.run(saga)
    order = shop.order(order_id)
    assert order.status == S.CONFIRMED and order.payment_reference is None
    assert order.timeline[-1]["note"] == FREE_ORDER_NOTE
    assert shop.stock(sku).reservations == {str(order_id): 2}
    assert shop.payments.find(order_id) is None
    assert shop.gateway.calls == []
    assert shop.payment_methods.token_for(order_id) is None


def test_a_free_order_short_of_stock_is_rejected(shop: MemoryShop, saga: CheckoutSaga) -> None:
    product_id, _ = shop.product(price="0.00", stock=1)
    order_id = shop.checkout(product_id, 2)
    shop.run(saga)
    assert shop.order(order_id).status == S.REJECTED


def test_an_order_cancelled_before_the_saga_saw_it_holds_nothing(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    product_id, sku = shop.product()
    order_id = shop.checkout(product_id, 2)
    shop.orders.cancel_by_shopper(shop.shopper(order_id), order_id, "")
    shop.run(saga)  # Placed and Cancelled in one pull
    assert shop.order(order_id).status == S.CANCELLED
    assert shop.stock(sku).reservations == {} and shop.stock(sku).closed == {}
    assert shop.gateway.calls == []


def test_a_partition_takes_only_its_own_orders(shop: MemoryShop) -> None:
    product_id, _ = shop.product(stock=20)
    orders = [shop.checkout(product_id, 1) for _ in range(6)]
    sagas = [shop.saga(partition=n, partitions=2) for n in range(2)]
    shop.run(sagas[0])
    decided = {o for o in orders if shop.order(o).status == S.CONFIRMED}
    assert decided == {o for o in orders if o.int % 2 == 0}
    shop.run(sagas[1])
    assert all(shop.order(o).status == S.CONFIRMED for o in orders)
    with pytest.raises(ValueError, match="partition"):
        shop.saga(partition=2, partitions=2)


# --- 3-D Secure ----------------------------------------------------------------------------


def awaiting(shop: MemoryShop, saga: CheckoutSaga) -> tuple[UUID, str]:
    """An order of 2 units awaiting the shopper's authentication: (id, SKU)."""
    product_id, sku = shop.product()
    order_id = shop.checkout(product_id, 2, THREE_D_SECURE)
    shop.run(saga)
    waiting = shop.order(order_id)
    assert waiting.status == S.AWAITING_AUTHENTICATION
    assert waiting.authentication == {
        "payment_reference": reference(shop, order_id),
        "client_secret": f"{reference(shop, order_id)}_secret",
        "approval_url": None,
    }
    assert shop.stock(sku).reservations == {str(order_id): 2}  # held meanwhile
    assert shop.payment_methods.token_for(order_id) == THREE_D_SECURE
    return order_id, sku


def test_an_authenticated_payment_confirms_the_order_awaiting_it(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    order_id, sku = awaiting(shop, saga)
    shop.run(saga)  # nothing new while the shopper is away
    assert shop.order(order_id).status == S.AWAITING_AUTHENTICATION
    shop.gateway.authenticate(reference(shop, order_id), approve=True)
    assert shop.orders.confirm_payment(shop.shopper(order_id), order_id).position is not None
    shop.run(saga)
    confirmed = shop.order(order_id)
    assert (confirmed.status, confirmed.payment_reference) == (
        S.CONFIRMED,
        reference(shop, order_id),
    )
    assert shop.stock(sku).reservations == {str(order_id): 2}
    assert shop.payment_methods.token_for(order_id) is None
    assert shop.gateway.executed["authorize"] == 1


def test_a_failed_authentication_rejects_the_order_and_releases_the_stock(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    order_id, sku = awaiting(shop, saga)
    shop.gateway.authenticate(reference(shop, order_id), approve=False)
    shop.orders.confirm_payment(shop.shopper(order_id), order_id)
    shop.run(saga)
    rejected = shop.order(order_id)
    assert rejected.status == S.REJECTED
    assert rejected.rejection_reason == "payment declined: The shopper did not authenticate."
    assert shop.stock(sku).closed[str(order_id)] == "released"
    assert shop.gateway.executed["void"] == 0


def test_an_abandoned_authentication_is_rejected_voided_and_released(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    order_id, sku = awaiting(shop, saga)
    sweep = shop.sweep(order_id)
    assert sweep.sweep() == 1
    assert sweep.sweep() == 0  # another process, the next round: nothing
    shop.run(saga)
    rejected = shop.order(order_id)
    assert rejected.status == S.REJECTED
    assert rejected.rejection_reason == "the payment was not authenticated within 15 minutes"
    assert shop.payment(order_id).status == PaymentStatus.VOIDED
    assert shop.gateway.executed["void"] == 1
    assert shop.stock(sku).available == 5


def test_an_authentication_that_ended_unreported_is_recorded_by_the_sweep(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    order_id, _ = awaiting(shop, saga)
    shop.gateway.authenticate(reference(shop, order_id), approve=True)
    assert shop.sweep(order_id).sweep() == 0
    shop.run(saga)
    assert shop.order(order_id).status == S.CONFIRMED


def test_a_gateway_down_at_the_sweep_leaves_the_order_for_the_next_round(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    order_id, sku = awaiting(shop, saga)
    shop.gateway.fail_next("retrieve")
    assert shop.sweep(order_id).sweep() == 0
    assert shop.order(order_id).status == S.AWAITING_AUTHENTICATION
    assert shop.stock(sku).reservations == {str(order_id): 2}
    assert shop.sweep(order_id).sweep() == 1


# --- after the decision --------------------------------------------------------------------


def test_shipped_units_are_committed_and_returned_ones_restocked_once(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    product_id, sku = shop.product()
    order_id = shop.checkout(product_id, 2)
    shop.run(saga)
    shop.orders.ship(ADMIN, order_id, "UPS", "1Z1")
    shop.run(saga)
    assert (shop.stock(sku).on_hand, shop.stock(sku).closed) == (3, {str(order_id): "committed"})
    shop.orders.mark_delivered(ADMIN, order_id)
    shop.orders.request_return(shop.shopper(order_id), order_id, "too big")
    shop.orders.approve_return(ADMIN, order_id)
    shop.orders.mark_returned(ADMIN, order_id)
    shop.run(saga)
    saga.restock(order_id)  # redelivered
    assert shop.stock(sku).on_hand == 5


def test_a_refund_made_at_the_provider_is_recorded_on_the_order_once(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    product_id, _ = shop.product(price="10.00")
    order_id = shop.checkout(product_id, 3)
    shop.run(saga)
    shop.orders.ship(ADMIN, order_id, "UPS", "1Z1")
    shop.orders.mark_delivered(ADMIN, order_id)
    outside = shop.gateway.refund(reference(shop, order_id), eur("7.00"), "dashboard-1")
    shop.payments.record(outside)  # the provider's webhook
    shop.run(saga)
    saga.record_provider_refund(shop.payment(order_id).id, outside.refund_id, outside.amount)
    refunded = shop.order(order_id)
    assert (refunded.refunded, refunded.refund_ids) == (eur("7.00"), [outside.refund_id])
    assert refunded.timeline[-1]["note"] == (
        "partially refunded 7.00 EUR: refunded at the payment provider"
    )


# --- redelivery -------------------------------------------------------------------------------


def everything(shop: MemoryShop) -> dict[str, Any]:
    """What the saga's steps write: every aggregate's version, and the gateway's calls."""
    return {
        "ordering": {n.originator_id: n.originator_version for n in _all(shop, "ordering")},
        "payments": {n.originator_id: n.originator_version for n in _all(shop, "payments")},
        "inventory": {
            n.originator_id: n.originator_version
            for n in shop.inventory_app.recorder.select_notifications(start=1, limit=10_000)
        },
        "gateway": list(shop.gateway.executions),
    }


def _all(shop: MemoryShop, log: str) -> list[Any]:
    app = shop.ordering.app if log == "ordering" else shop.ordering.payments_app
    return list(app.recorder.select_notifications(start=1, limit=10_000))


def test_every_event_delivered_again_does_nothing_twice(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    product_id, _ = shop.product(stock=20)
    confirmed = shop.checkout(product_id, 1)
    shop.checkout(product_id, 1, DECLINED)
    free_id, _ = shop.product(price="0.00")
    shop.checkout(free_id, 1)
    cancelled = shop.checkout(product_id, 2)
    authenticated = shop.checkout(product_id, 1, THREE_D_SECURE)
    shop.run(saga)
    shop.orders.cancel_by_shopper(shop.shopper(cancelled), cancelled, "")
    shop.orders.ship(ADMIN, confirmed, "UPS", "1Z1")
    shop.gateway.authenticate(reference(shop, authenticated), approve=True)
    shop.orders.confirm_payment(shop.shopper(authenticated), authenticated)
    shop.run(saga)
    before = everything(shop)
    # Each pull delivered again to the same saga (a crash before it was tracked)...
    for log in ("ordering", "payments"):
        saga.process_batch(deliveries(shop, log))
    # ...and one event at a time to a saga that tracked nothing yet.
    again = shop.saga()
    assert shop.run(again, in_pulls=False) > 0
    assert everything(shop) == before


def test_an_order_placed_delivered_again_after_its_decision_is_not_decided_again(
    shop: MemoryShop, saga: CheckoutSaga
) -> None:
    product_id, sku = shop.product()
    order_id = shop.checkout(product_id, 2, THREE_D_SECURE)
    shop.run(saga)
    shop.sweep(order_id).sweep()
    shop.run(saga)
    assert shop.order(order_id).status == S.REJECTED
    before = everything(shop)
    saga.process_event(*placed(shop, order_id))
    assert everything(shop) == before
    assert shop.stock(sku).available == 5


# --- any interleaving ------------------------------------------------------------------------

PAID_STOCK, FREE_STOCK = 6, 2
FREE = "free"
TOKENS = [OK, OK, DECLINED, THREE_D_SECURE, REFUSED, FREE]


@dataclass
class Placed:
    order_id: UUID
    sku: str
    quantity: int
    free: bool


class Drive:
    """The two logs delivered to the saga in pulls of any size, in any order between
    the logs (each log in its own order, as the runners do); a pull may be delivered
    twice (a crash before it was tracked), and a pull that raises (the gateway down) is
    delivered again by a later pull, as the runners retry it."""

    def __init__(self, shop: MemoryShop, saga: CheckoutSaga) -> None:
        self.shop = shop
        self.saga = saga

    def pull(self, log: str, size: int, twice: bool) -> None:
        app = self.shop.ordering.app if log == "ordering" else self.shop.ordering.payments_app
        after = self.saga.view.max_tracking_id(app.name) or 0
        batch = deliveries(self.shop, log, after, size)
        for _ in range(1 + twice if batch else 0):
            try:
                self.saga.process_batch(batch)
            except GatewayUnavailable:
                return


def act(shop: MemoryShop, orders: list[Placed], products: dict[bool, UUID], step: Any) -> None:
    """One shopper's, admin's or gateway's move; a move the shop refuses is no move."""
    kind, *args = step
    if kind == "outage":
        shop.gateway.fail_next(args[0])
        return
    if kind == "checkout":
        token, quantity = args
        free = token == FREE
        user, order_id = uuid4(), uuid4()
        shop.carts.add(cart_id_for(user), user, products[free], quantity)
        shop.carts.checkout(user, order_id, ADDRESS, OK if free else token)
        sku = next(iter(shop.order(order_id).skus))
        orders.append(Placed(order_id, sku, quantity, free))
        return
    if not orders:
        return
    order_id = orders[args[0] % len(orders)].order_id
    try:
        match kind:
            case "cancel":
                shop.orders.cancel_by_shopper(shop.shopper(order_id), order_id, "")
            case "admin_cancel":
                shop.orders.cancel_by_admin(ADMIN, order_id, "fraud suspected")
            case "ship":
                shop.orders.ship(ADMIN, order_id, "UPS", "1Z1")
            case "sweep":
                shop.sweep(order_id).sweep()
            case "authenticate":
                approve, news = args[1:]
                payment = shop.payments.find(order_id)
                if payment is None or payment.reference is None:
                    return
                shop.gateway.authenticate(payment.reference, approve)
                if news == "confirm":
                    shop.orders.confirm_payment(shop.shopper(order_id), order_id)
                elif news == "webhook":
                    shop.payments.record(shop.gateway.retrieve(payment.reference))
    except (DomainError, Refused):
        pass


ORDER = st.integers(-3, 20)
"""Which order a move is about (modulo the orders placed so far: -1 is the latest)."""
MOVES: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "checkout": st.tuples(st.just("checkout"), st.sampled_from(TOKENS), st.integers(1, 2)),
    "pull": st.tuples(
        st.just("pull"),
        st.sampled_from(["ordering", "payments"]),
        st.sampled_from([1, 2, 5, 10_000]),  # a few events, or all there are
        st.booleans(),  # delivered twice
    ),
    "ship": st.tuples(st.just("ship"), ORDER),
    "cancel": st.tuples(st.sampled_from(["cancel", "admin_cancel"]), ORDER),
    "sweep": st.tuples(st.just("sweep"), ORDER),
    "authenticate": st.tuples(
        st.just("authenticate"),
        ORDER,
        st.booleans(),  # approved
        st.sampled_from(["confirm", "webhook", "none"]),  # how the news comes
    ),
    "outage": st.tuples(
        st.just("outage"), st.sampled_from(["authorize", "void", "capture", "refund", "retrieve"])
    ),
}
WEIGHTS = {
    "checkout": 3,
    "pull": 5,
    "ship": 2,
    "cancel": 1,
    "sweep": 1,
    "authenticate": 2,
    "outage": 1,
}
STEPS = st.lists(
    st.sampled_from([kind for kind, weight in WEIGHTS.items() for _ in range(weight)]).flatmap(
        MOVES.__getitem__
    ),
    min_size=12,
    max_size=40,
)


@settings(max_examples=30, deadline=None)
@given(steps=STEPS)
def test_whatever_the_interleaving_each_order_holds_and_moves_stock_and_money_once(
    steps: list[Any],
) -> None:
    """After any run, with everything delivered and abandoned authentications swept:
    every order is decided; its reservation was made at most once and closed at most
    once, released if it ended rejected or cancelled unshipped, committed if shipped,
    held if confirmed; stock on hand and available follow; every gateway call moved
    money once; no rejected or cancelled order keeps an authorization or a capture,
    a confirmed one holds its authorization, a shipped one its capture; free orders
    never reach the gateway. Delivering every event again to a new saga changes
    nothing."""
    shop = memory_shop()
    paid_id, paid_sku = shop.product(price="10.00", stock=PAID_STOCK)
    free_id, free_sku = shop.product(price="0.00", stock=FREE_STOCK)
    saga = shop.saga()
    drive = Drive(shop, saga)
    orders: list[Placed] = []
    for step in steps:
        if step[0] == "pull":
            drive.pull(*step[1:])
        else:
            act(shop, orders, {False: paid_id, True: free_id}, step)
    shop.gateway.recover()
    shop.run(saga)
    shop.sweep(*(o.order_id for o in orders)).sweep()
    shop.run(saga)

    assert len(set(shop.gateway.executions)) == len(shop.gateway.executions)
    stock_events: dict[str, list[Any]] = {
        sku: list(shop.inventory_app.events.get(shop.stock(sku).id)) for sku in (paid_sku, free_sku)
    }
    for placed_order in orders:
        order = shop.order(placed_order.order_id)
        rid = str(order.id)
        history = [
            type(e).__name__
            for e in stock_events[placed_order.sku]
            if getattr(e, "reservation_id", None) == rid
        ]
        reserved = history.count("StockReserved")
        released = history.count("ReservationReleased")
        committed = history.count("ReservationCommitted")
        item = shop.stock(placed_order.sku)
        assert order.status in {S.CONFIRMED, S.REJECTED, S.CANCELLED, S.SHIPPED}, order.status
        assert reserved <= 1 and released + committed <= reserved
        if order.carrier is not None:  # shipped (an admin may have cancelled it since)
            assert (reserved, committed) == (1, 1)
        elif order.status == S.CONFIRMED:
            assert item.reservations.get(rid) == placed_order.quantity and released == 0
        else:
            assert released == reserved and rid not in item.reservations
        assert shop.payment_methods.token_for(order.id) is None
        payment = shop.payments.find(order.id)
        if placed_order.free:
            assert payment is None
            continue
        ref = None if payment is None else payment.reference
        at_gateway = None if ref is None else shop.gateway.payments.get(ref)
        if order.status == S.CONFIRMED:
            assert payment is not None and payment.status == PaymentStatus.AUTHORIZED
            assert at_gateway is not None and at_gateway.status == "authorized"
            assert order.payment_reference == payment.reference
        elif order.status == S.SHIPPED:
            assert payment is not None and payment.captured == order.total == order.captured
        elif at_gateway is not None:  # rejected or cancelled: nothing held, nothing kept
            assert at_gateway.status not in {"authorized", "action_required"}
            assert at_gateway.refunded == at_gateway.captured == order.refunded
    for sku, initial in ((paid_sku, PAID_STOCK), (free_sku, FREE_STOCK)):
        item = shop.stock(sku)
        shipped = sum(o.quantity for o in orders if o.sku == sku and shop.order(o.order_id).carrier)
        assert item.on_hand == initial - shipped
        assert item.available == item.on_hand - sum(item.reservations.values()) >= 0

    before = everything(shop)
    shop.run(shop.saga())
    assert everything(shop) == before

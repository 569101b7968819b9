"""Orders and payments: the Order lifecycle and the Payment's amounts under random
command sequences, against a model written out here (not imported from the domain,
so the transition table itself is under test).

After every step: the status is the model's, money never breaks its bounds
(refunded <= captured <= total on the order; captured <= authorized <= requested and
refunded <= captured on the payment), no event sequence holds an illegal transition
(shipping a cancelled order, cancelling a delivered one...), a refused command
records nothing, a repeated gateway event records nothing, and replaying the events
(in memory, and from a store that snapshots) rebuilds the same state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from domain.errors import DomainError, NotPermitted
from domain.lines import MAX_LINES, InvalidLine, line
from domain.money import Money
from domain.order_fields import InvalidOrder
from domain.order_status import OrderTransitionNotAllowed
from domain.orders import Order, ReturnWindowClosed, place_order
from domain.payments import (
    CaptureExceedsAuthorized,
    InvalidPayment,
    Payment,
    PaymentTransitionNotAllowed,
    RefundExceedsCaptured,
    payment_id,
    request_payment,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=14)
CUSTOMER = UUID(int=1)
ADMIN = UUID(int=2)
STRANGER = UUID(int=3)
EUR = "EUR"


def eur(amount: str | int | Decimal) -> Money:
    return Money.of(amount if isinstance(amount, Decimal) else str(amount), EUR)


def replay(events: list[Any]) -> Any:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


class SnapshottingStore(Application[UUID]):
    snapshotting_intervals = {Order: 4, Payment: 3}


# Where each command may start from (a command repeated in its own target status is a
# no-op, listed separately). Written out from the issue, not from the domain module.
ALLOWED = {
    "await_authentication": {"placed"},
    "confirm": {"placed", "awaiting_authentication"},
    "reject": {"placed", "awaiting_authentication"},
    "ship": {"confirmed"},
    "deliver": {"shipped"},
    "shopper_cancel": {"placed", "awaiting_authentication", "confirmed"},
    "admin_cancel": {"placed", "awaiting_authentication", "confirmed", "shipped"},
    "request_return": {"delivered"},
    "approve_return": {"return_requested"},
    "refuse_return": {"return_requested"},
    "returned": {"return_approved"},
}
TARGET = {
    "await_authentication": "awaiting_authentication",
    "confirm": "confirmed",
    "reject": "rejected",
    "ship": "shipped",
    "deliver": "delivered",
    "shopper_cancel": "cancelled",
    "admin_cancel": "cancelled",
    "request_return": "return_requested",
    "approve_return": "return_approved",
    "refuse_return": "return_refused",
    "returned": "returned",
}
CAPTURABLE = {"confirmed", "shipped", "delivered"}
REFUNDABLE = {
    "cancelled",
    "delivered",
    "return_requested",
    "return_approved",
    "return_refused",
    "returned",
}
# Where a full refund ends the order (elsewhere it keeps its status).
ENDS_REFUNDED = REFUNDABLE - {"cancelled"}
# Sequences no order may ever show (a later event after an earlier one).
NEVER_AFTER = {
    "Cancelled": {
        "Confirmed",
        "Shipped",
        "Delivered",
        "ReturnRequested",
        "AuthenticationRequested",
    },
    "Delivered": {"Cancelled"},
    "Rejected": {"Confirmed", "Shipped", "Cancelled", "AuthenticationRequested"},
    "Confirmed": {"Rejected", "AuthenticationRequested"},
}

# A share of some amount, in percent: mostly within it, sometimes above.
shares = st.integers(1, 120)
# Commands that end a lifecycle act on one roll in eight, so runs go deeper.
rarely = st.integers(0, 7)


def share(of: Money, percent: int) -> Money:
    return eur(max(Decimal("0.01"), (of.amount * percent / 100).quantize(Decimal("0.01"))))


class Lifecycle(RuleBasedStateMachine):
    """One order and its payment, the model, and the checks; the rules are in the
    two machines below (apart, each explores deeper)."""

    def __init__(self) -> None:
        super().__init__()
        self.store = SnapshottingStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.now = T0
        lines = [
            line(uuid4(), "SKU-A", 2, eur("12.50")),
            line(uuid4(), "SKU-B", 1, eur("15.00")),
        ]
        self.order = place_order(uuid4(), CUSTOMER, lines, {"name": "Ann", "city": "Lyon"}, T0)
        self.payment = request_payment(self.order.id, self.order.total, "sandbox", "manual")
        # The model.
        self.status = "placed"
        self.captured = eur(0)
        self.refunded = eur(0)
        self.delivered_at: datetime | None = None
        self.pay_status = "requested"
        self.authorized = eur(0)
        self.pay_captured = eur(0)
        self.pay_refunded = eur(0)
        self.gateway_ids: list[str] = []
        self.ids = 0
        self.order_events: list[Any] = []
        self.payment_events: list[Any] = []
        self.history: dict[tuple[UUID, int], Any] = {}
        self._saved(["Placed"], ["Requested"])

    # --- helpers ----------------------------------------------------------------------

    def _saved(self, order_names: list[str], payment_names: list[str]) -> None:
        new_order = list(self.order.pending_events)
        new_payment = list(self.payment.pending_events)
        assert [type(e).__name__ for e in new_order] == order_names
        assert [type(e).__name__ for e in new_payment] == payment_names
        for name in order_names + payment_names:
            event(name)
        self.order_events.extend(new_order)
        self.payment_events.extend(new_payment)
        self.store.save(self.order, self.payment)
        for aggregate in (self.order, self.payment):
            self.history[(aggregate.id, aggregate.version)] = copy.deepcopy(aggregate)

    def _refused(self, error: type[DomainError], command: Callable[[], None]) -> None:
        with pytest.raises(error):
            command()
        self._saved([], [])

    def _new_id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}_{self.ids}"

    def _lifecycle(self, name: str, command: Callable[[], None], event_name: str) -> None:
        if self.status == TARGET[name]:
            command()  # a retried command: nothing new
            self._saved([], [])
        elif self.status in ALLOWED[name]:
            command()
            self.status = TARGET[name]
            self._saved([event_name], [])
        else:
            self._refused(OrderTransitionNotAllowed, command)

    # --- invariants -------------------------------------------------------------------

    @invariant()
    def the_status_is_the_models(self) -> None:
        assert self.order.status == self.status
        assert self.payment.status == self.pay_status
        assert self.order.timeline[-1]["status"] == self.status

    @invariant()
    def money_never_breaks_its_bounds(self) -> None:
        o, p = self.order, self.payment
        assert eur(0) <= o.refunded <= o.captured <= o.total
        assert (o.captured, o.refunded) == (self.captured, self.refunded)
        assert p.refunded <= p.captured <= p.authorized <= p.amount
        assert (p.authorized, p.captured, p.refunded) == (
            self.authorized,
            self.pay_captured,
            self.pay_refunded,
        )
        assert sum((Decimal(v) for v in p.refunds.values()), Decimal(0)) == p.refunded.amount

    @invariant()
    def no_illegal_sequence_was_ever_recorded(self) -> None:
        names = [type(e).__name__ for e in self.order_events]
        for earlier, forbidden in NEVER_AFTER.items():
            if earlier in names:
                later = names[names.index(earlier) + 1 :]
                assert not forbidden & set(later), (earlier, later)
        if "Shipped" in names:
            assert (self.order.carrier, self.order.tracking_number) == ("DHL", "JD0142")
        assert (self.order.delivered_at is None) == ("Delivered" not in names)

    @invariant()
    def replaying_the_events_rebuilds_the_same_state(self) -> None:
        assert replay(self.order_events) == self.order
        assert replay(self.payment_events) == self.payment
        assert self.store.repository.get(self.order.id) == self.order
        assert self.store.repository.get(self.payment.id) == self.payment

    def teardown(self) -> None:
        for (aggregate_id, version), state in self.history.items():
            assert self.store.repository.get(aggregate_id, version=version) == state


class OrderLifecycle(Lifecycle):
    # --- the order's lifecycle --------------------------------------------------------

    @rule()
    def confirm(self) -> None:
        self._lifecycle("confirm", lambda: self.order.confirm("pi_1", self.now), "Confirmed")

    @rule()
    def await_authentication(self) -> None:
        def wait() -> None:
            self.order.await_authentication("pi_1", self.now, client_secret="pi_1_secret_x")

        self._lifecycle("await_authentication", wait, "AuthenticationRequested")
        if self.status == "awaiting_authentication":
            assert self.order.authentication == {
                "payment_reference": "pi_1",
                "client_secret": "pi_1_secret_x",
                "approval_url": None,
            }

    @rule(reason=st.sampled_from(["out of stock: SKU-A", "card declined"]), roll=rarely)
    def reject(self, reason: str, roll: int) -> None:
        if roll:
            return
        self._lifecycle("reject", lambda: self.order.reject(reason, self.now), "Rejected")

    @rule()
    def ship(self) -> None:
        ship: Callable[[], None] = lambda: self.order.ship("DHL", "JD0142", ADMIN, self.now)  # noqa: E731
        self._lifecycle("ship", ship, "Shipped")

    @rule()
    def deliver(self) -> None:
        was = self.status
        self._lifecycle("deliver", lambda: self.order.mark_delivered(self.now), "Delivered")
        if was == "shipped":
            self.delivered_at = self.now

    @rule(
        who=st.sampled_from([CUSTOMER, STRANGER]),
        reason=st.sampled_from(["", "changed mind"]),
        roll=rarely,
    )
    def shopper_cancels(self, who: UUID, reason: str, roll: int) -> None:
        if roll:
            return
        cancel: Callable[[], None] = lambda: self.order.cancel_by_shopper(who, self.now, reason)  # noqa: E731
        if who != CUSTOMER:
            self._refused(NotPermitted, cancel)
            return
        self._lifecycle("shopper_cancel", cancel, "Cancelled")

    @rule(reason=st.sampled_from(["fraud suspected", "parcel lost", " "]), roll=rarely)
    def admin_cancels(self, reason: str, roll: int) -> None:
        if roll:
            return
        cancel: Callable[[], None] = lambda: self.order.cancel_by_admin(ADMIN, reason, self.now)  # noqa: E731
        if not reason.strip() and self.status in ALLOWED["admin_cancel"]:
            self._refused(InvalidOrder, cancel)
            return
        self._lifecycle("admin_cancel", cancel, "Cancelled")

    @rule(who=st.sampled_from([CUSTOMER, CUSTOMER, STRANGER]))
    def request_return(self, who: UUID) -> None:
        def request() -> None:
            self.order.request_return(who, "does not fit", self.now, WINDOW)

        if who != CUSTOMER:
            self._refused(NotPermitted, request)
        elif (
            self.status == "delivered"
            and self.delivered_at is not None
            and self.now > self.delivered_at + WINDOW
        ):
            self._refused(ReturnWindowClosed, request)
        else:
            self._lifecycle("request_return", request, "ReturnRequested")

    @rule()
    def approve_return(self) -> None:
        approve: Callable[[], None] = lambda: self.order.approve_return(ADMIN, self.now)  # noqa: E731
        self._lifecycle("approve_return", approve, "ReturnApproved")

    @rule()
    def refuse_return(self) -> None:
        refuse: Callable[[], None] = lambda: self.order.refuse_return(ADMIN, "worn", self.now)  # noqa: E731
        self._lifecycle("refuse_return", refuse, "ReturnRefused")

    @rule()
    def goods_returned(self) -> None:
        self._lifecycle("returned", lambda: self.order.mark_returned(self.now), "Returned")

    @rule(days=st.integers(0, 10))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days, hours=1)

    # --- the order's money ------------------------------------------------------------

    @rule(percent=shares)
    def order_records_a_capture(self, percent: int) -> None:
        amount = share(self.order.total, percent)
        capture_id = self._new_id("ch")

        def command() -> None:
            self.order.record_capture(capture_id, amount, self.now)

        if self.status not in CAPTURABLE:
            self._refused(OrderTransitionNotAllowed, command)
        elif self.captured + amount > self.order.total:
            self._refused(CaptureExceedsAuthorized, command)
        else:
            command()
            self.captured += amount
            self._saved(["PaymentCaptured"], [])
            command()  # the same capture reported again
            self._saved([], [])

    @rule(percent=shares, everything=st.booleans())
    def order_records_a_refund(self, percent: int, everything: bool) -> None:
        refundable = self.captured - self.refunded
        amount = share(self.captured, percent)
        if everything and refundable.amount > 0:
            amount = refundable
        refund_id = self._new_id("re")

        def refund() -> None:
            self.order.record_refund(refund_id, amount, "goodwill", self.now)

        if self.status not in REFUNDABLE:
            self._refused(OrderTransitionNotAllowed, refund)
        elif amount > refundable:
            self._refused(RefundExceedsCaptured, refund)
        else:
            refund()
            self.refunded += amount
            if self.refunded == self.captured and self.status != "cancelled":
                self.status = "refunded"
            self._saved(["Refunded"], [])
            refund()
            self._saved([], [])

    @rule(percent=shares, everything=st.booleans())
    def payment_provider_refunds(self, percent: int, everything: bool) -> None:
        """A refund made outside the shop: whatever the status, within the capture."""
        refundable = self.captured - self.refunded
        amount = share(self.captured, percent)
        if everything and refundable.amount > 0:
            amount = refundable
        refund_id = self._new_id("re")

        def refund() -> None:
            self.order.record_provider_refund(refund_id, amount, self.now)

        if amount > refundable:
            self._refused(RefundExceedsCaptured, refund)
        else:
            refund()
            self.refunded += amount
            if self.refunded == self.captured and self.status in ENDS_REFUNDED:
                self.status = "refunded"
            self._saved(["Refunded"], [])
            refund()
            self._saved([], [])


class PaymentLifecycle(Lifecycle):
    # --- the payment ------------------------------------------------------------------

    def _gateway(self, name: str, command: Callable[[str], None], allowed: set[str]) -> str:
        """Run a gateway outcome under a new id; answer the id."""
        gateway_id = self._new_id("evt")
        if self.pay_status not in allowed:
            self._refused(PaymentTransitionNotAllowed, lambda: command(gateway_id))
            return ""
        command(gateway_id)
        self.gateway_ids.append(gateway_id)
        self._saved([], [name])
        return gateway_id

    @rule()
    def gateway_asks_for_3ds(self) -> None:
        if self._gateway(
            "ActionRequired",
            lambda g: self.payment.record_action_required(g, "pi_1"),
            {"requested"},
        ):
            self.pay_status = "action_required"

    @rule(percent=shares)
    def gateway_authorizes(self, percent: int) -> None:
        amount = share(self.payment.amount, percent)
        allowed = {"requested", "action_required"}
        if self.pay_status in allowed and amount > self.payment.amount:
            self._refused(
                CaptureExceedsAuthorized,
                lambda: self.payment.record_authorized("evt_x", "pi_1", amount),
            )
            return
        if self._gateway(
            "Authorized", lambda g: self.payment.record_authorized(g, "pi_1", amount), allowed
        ):
            self.pay_status = "authorized"
            self.authorized = amount

    @rule(roll=rarely)
    def gateway_declines(self, roll: int) -> None:
        if roll:
            return
        if self._gateway(
            "AuthorizationFailed",
            lambda g: self.payment.record_authorization_failed(
                g, "pi_1", "card_declined", "Your card was declined."
            ),
            {"requested", "action_required"},
        ):
            self.pay_status = "failed"

    @rule(percent=shares)
    def gateway_captures(self, percent: int) -> None:
        amount = share(self.authorized, percent)
        capture_ref = self._new_id("ch")
        if self.pay_status == "authorized" and amount > self.authorized:
            self._refused(
                CaptureExceedsAuthorized,
                lambda: self.payment.record_captured("evt_x", capture_ref, amount),
            )
            return
        if self._gateway(
            "Captured",
            lambda g: self.payment.record_captured(g, capture_ref, amount),
            {"authorized"},
        ):
            self.pay_status = "captured"
            self.pay_captured = amount
            # The same capture again, by the webhook under its own event id: nothing new.
            self.payment.record_captured(self._new_id("evt"), capture_ref, amount)
            self._saved([], [])

    @rule(roll=rarely)
    def gateway_voids(self, roll: int) -> None:
        if roll:
            return
        if self.pay_status == "voided":
            self.payment.record_voided(self._new_id("evt"))  # already void: nothing new
            self._saved([], [])
            return
        if self._gateway("Voided", self.payment.record_voided, {"authorized", "action_required"}):
            self.pay_status = "voided"

    @rule(percent=shares, everything=st.booleans())
    def gateway_refunds(self, percent: int, everything: bool) -> None:
        refundable = self.pay_captured - self.pay_refunded
        amount = share(self.pay_captured, percent)
        if everything and refundable.amount > 0:
            amount = refundable
        refund_ref = self._new_id("re")
        if self.pay_status == "captured" and amount > refundable:
            self._refused(
                RefundExceedsCaptured,
                lambda: self.payment.record_refunded("evt_x", refund_ref, amount),
            )
            return
        if self._gateway(
            "Refunded",
            lambda g: self.payment.record_refunded(g, refund_ref, amount),
            {"captured"},
        ):
            self.pay_refunded += amount
            if self.pay_refunded == self.pay_captured:
                self.pay_status = "refunded"
            # The same refund again, by the webhook under its own event id: nothing new.
            self.payment.record_refunded(self._new_id("evt"), refund_ref, amount)
            self._saved([], [])

    @rule(data=st.data())
    def a_gateway_event_is_delivered_again(self, data: st.DataObject) -> None:
        if not self.gateway_ids:
            return
        gateway_id = data.draw(st.sampled_from(self.gateway_ids))
        # Whatever it was, a repeated event id records nothing, even where the same
        # outcome under a new id would be refused.
        self.payment.record_authorized(gateway_id, "pi_1", eur(1))
        self.payment.record_captured(gateway_id, "ch_1", eur(1))
        self.payment.record_refunded(gateway_id, "re_again", eur("0.01"))
        self.payment.record_voided(gateway_id)
        self._saved([], [])


@pytest.mark.parametrize("machine", [OrderLifecycle, PaymentLifecycle])
def test_orders_and_payments_keep_their_invariants_under_random_commands(
    machine: type[Lifecycle],
) -> None:
    run_state_machine_as_test(
        machine, settings=settings(max_examples=200, stateful_step_count=50, deadline=None)
    )


# --- focused tests ----------------------------------------------------------------------


def placed(*lines: dict[str, Any]) -> Order:
    return place_order(
        uuid4(),
        CUSTOMER,
        list(lines) or [line(uuid4(), "SKU-A", 2, eur("10.00"))],
        {"name": "Ann"},
        T0,
    )


def delivered(captured: str = "20.00") -> Order:
    order = placed()
    order.confirm("pi_1", T0)
    order.record_capture("ch_1", eur(captured), T0)
    order.ship("UPS", "1Z999", ADMIN, T0)
    order.mark_delivered(T0 + timedelta(days=2))
    return order


def test_an_order_totals_its_lines_in_one_currency() -> None:
    order = placed(line(uuid4(), "SKU-A", 3, eur("2.50")), line(uuid4(), "SKU-B", 1, eur("0.99")))
    assert order.total == eur("8.49")
    assert order.skus == {"SKU-A": 3, "SKU-B": 1}
    with pytest.raises(InvalidLine):
        placed(line(uuid4(), "SKU-A", 1, eur(1)), line(uuid4(), "SKU-B", 1, Money.of(1, "USD")))
    with pytest.raises(InvalidLine):
        placed(line(uuid4(), "SKU-A", 1, eur(1)), line(uuid4(), "sku-a", 1, eur(1)))
    with pytest.raises(InvalidLine):
        placed(*[line(uuid4(), f"SKU-{n}", 1, eur(1)) for n in range(MAX_LINES + 1)])
    with pytest.raises(InvalidOrder):
        place_order(uuid4(), CUSTOMER, [], {"name": "Ann"}, T0)
    with pytest.raises(InvalidOrder):
        place_order(uuid4(), CUSTOMER, [line(uuid4(), "SKU-A", 1, eur(1))], {}, T0)


def test_tampered_line_payloads_are_checked_again() -> None:
    good = line(uuid4(), "SKU-A", 1, eur(1))
    for bad in (
        {**good, "quantity": 0},
        {**good, "quantity": 10**9},
        {**good, "unit_price": {"amount": "-1", "currency": EUR}},
        {k: v for k, v in good.items() if k != "sku"},
    ):
        with pytest.raises((InvalidLine, ValueError)):
            place_order(uuid4(), CUSTOMER, [bad], {"name": "Ann"}, T0)


def test_the_return_window_is_measured_from_delivery() -> None:
    order = delivered()
    assert order.delivered_at == T0 + timedelta(days=2)
    with pytest.raises(ReturnWindowClosed) as caught:
        order.request_return(CUSTOMER, "too big", T0 + timedelta(days=17), WINDOW)
    assert caught.value.code == "return-window-closed"
    order.request_return(CUSTOMER, "too big", T0 + timedelta(days=16), WINDOW)
    assert order.status == "return_requested"


def test_illegal_transitions_say_what_and_from_where() -> None:
    order = placed()
    order.cancel_by_shopper(CUSTOMER, T0)
    with pytest.raises(OrderTransitionNotAllowed) as caught:
        order.ship("DHL", "1", ADMIN, T0)
    assert caught.value.code == "order-transition-not-allowed"
    assert (caught.value.status, caught.value.action) == ("cancelled", "ship")
    assert str(caught.value) == "cannot ship an order that is cancelled"
    with pytest.raises(OrderTransitionNotAllowed):
        delivered().cancel_by_admin(ADMIN, "too late", T0)


def test_a_full_refund_after_a_return_ends_refunded_a_cancelled_order_stays_cancelled() -> None:
    order = delivered("20.00")
    order.request_return(CUSTOMER, "broken", T0 + timedelta(days=3), WINDOW)
    order.approve_return(ADMIN, T0)
    order.mark_returned(T0)
    order.record_refund("re_1", eur("5.00"), "shipping damage", T0)
    assert order.status == "returned"
    order.record_refund("re_2", eur("15.00"), "return", T0)
    assert order.status == "refunded"
    assert [entry["status"] for entry in order.timeline] == [
        "placed",
        "confirmed",
        "shipped",
        "delivered",
        "return_requested",
        "return_approved",
        "returned",
        "returned",
        "refunded",
    ]
    assert order.timeline[-1]["note"] == "refunded 15.00 EUR: return"

    cancelled = placed()
    cancelled.confirm("pi_2", T0)
    cancelled.record_capture("ch_2", eur("20.00"), T0)
    cancelled.cancel_by_admin(ADMIN, "fraud suspected", T0)
    cancelled.record_refund("re_3", eur("20.00"), "cancelled", T0)
    assert cancelled.status == "cancelled"
    assert cancelled.cancellation == {"by": ADMIN, "by_admin": True, "reason": "fraud suspected"}
    with pytest.raises(RefundExceedsCaptured):
        cancelled.record_refund("re_4", eur("0.01"), "more", T0)


def test_a_rejection_keeps_its_readable_reason() -> None:
    order = placed()
    order.reject("SKU-A is out of stock", T0)
    assert order.rejection_reason == "SKU-A is out of stock"
    with pytest.raises(OrderTransitionNotAllowed):
        order.confirm("pi_1", T0)
    with pytest.raises(InvalidOrder):
        placed().reject("  ", T0)


def test_an_order_awaits_the_shoppers_authentication_then_is_decided() -> None:
    order = placed()
    url = "https://shop.example/sandbox/3ds/sbx_pay_1"
    order.await_authentication("sbx_pay_1", T0, approval_url=url)
    order.await_authentication("sbx_pay_1", T0, approval_url=url)  # redelivered: nothing new
    assert order.status == "awaiting_authentication"
    assert order.authentication == {
        "payment_reference": "sbx_pay_1",
        "client_secret": None,
        "approval_url": url,
    }
    assert [type(e).__name__ for e in order.collect_events()] == [
        "Placed",
        "AuthenticationRequested",
    ]
    order.confirm("sbx_pay_1", T0)
    assert [entry["status"] for entry in order.timeline] == [
        "placed",
        "awaiting_authentication",
        "confirmed",
    ]
    with pytest.raises(OrderTransitionNotAllowed):
        order.await_authentication("sbx_pay_1", T0)

    abandoned = placed()
    abandoned.await_authentication("pi_1", T0, client_secret="pi_1_secret_2")
    abandoned.reject("the payment was not authenticated within 15 minutes", T0)
    assert abandoned.status == "rejected"
    with pytest.raises(InvalidOrder):
        placed().await_authentication("pi_1", T0, approval_url="https://x/\n" * 300)


def test_a_refund_at_the_payment_provider_is_recorded_whatever_the_status() -> None:
    order = placed()
    order.confirm("pi_1", T0)
    order.record_capture("ch_1", eur("20.00"), T0)
    order.ship("UPS", "1Z", ADMIN, T0)
    with pytest.raises(OrderTransitionNotAllowed):
        order.record_refund("re_1", eur("5.00"), "goodwill", T0)  # ours: not before delivery
    order.record_provider_refund("re_1", eur("5.00"), T0)
    order.record_provider_refund("re_1", eur("5.00"), T0)  # the same refund: once
    order.record_provider_refund("re_2", eur("15.00"), T0)
    assert (order.status, order.refunded) == ("shipped", eur("20.00"))
    assert order.timeline[-1]["note"] == "refunded 15.00 EUR: refunded at the payment provider"
    with pytest.raises(RefundExceedsCaptured):
        order.record_provider_refund("re_3", eur("0.01"), T0)
    order.mark_delivered(T0)
    delivered_order = delivered()
    delivered_order.record_provider_refund("re_4", eur("20.00"), T0)
    assert delivered_order.status == "refunded"


def test_a_payment_belongs_to_its_order() -> None:
    order_id = uuid4()
    payment = request_payment(order_id, eur("10.00"), "stripe", "automatic")
    assert payment.id == payment_id(order_id)
    assert (payment.gateway, payment.capture_mode) == ("stripe", "automatic")
    for amount, mode in ((eur(0), "manual"), (eur(1), "later")):
        with pytest.raises(InvalidPayment):
            request_payment(order_id, amount, "stripe", mode)


def test_a_payment_keeps_its_gateway_reference() -> None:
    payment = request_payment(uuid4(), eur("10.00"), "sandbox", "manual")
    payment.record_action_required("evt_1", "pi_1")
    with pytest.raises(InvalidPayment):
        payment.record_authorized("evt_2", "pi_other", eur("10.00"))
    with pytest.raises(InvalidPayment):
        payment.record_authorized("evt_2", "pi_1", Money.of("10.00", "USD"))
    payment.record_authorized("evt_2", "pi_1", eur("10.00"))
    with pytest.raises(PaymentTransitionNotAllowed):
        payment.record_refunded("evt_3", "re_1", eur(1))
    payment.record_captured("evt_3", "ch_1", eur("6.00"))
    with pytest.raises(PaymentTransitionNotAllowed):
        payment.record_voided("evt_4")
    payment.record_refunded("evt_4", "re_1", eur("6.00"))
    assert payment.status == "refunded"
    assert payment.refundable == eur(0)

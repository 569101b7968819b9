"""PaymentCommands on the in-memory store against the fake gateway: authorize,
3-D Secure, capture, void, refund and webhooks, each moving money once however often
it runs. The fake itself first passes the contract every real adapter passes."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.errors import IdempotencyKeyReused
from commands.ordering.payment_gateway import (
    ActionRequired,
    Authorized,
    Declined,
    GatewayUnavailable,
    UnknownGatewayReference,
)
from commands.ordering.payments import PaymentCommands, PaymentsApplication, payment_key
from domain.money import Money
from domain.payment_references import PaymentReference, payment_reference_id
from domain.payments import (
    CaptureExceedsAuthorized,
    Payment,
    PaymentStatus,
    RefundExceedsCaptured,
)
from tests.integration.test_payment_gateways import GatewayContract
from tests.unit.ordering_fakes import (
    DECLINED,
    INSUFFICIENT_FUNDS,
    OK,
    POPO,
    THREE_D_SECURE,
    UNAVAILABLE,
    FakeGateway,
)

AMOUNT = Money.of("40.00", "EUR")


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


class TestTheFakeGatewayKeepsTheGatewayContract(GatewayContract):
    succeeding = OK
    declining = DECLINED
    decline_code = "card_declined"
    needing_action = THREE_D_SECURE

    @pytest.fixture
    def gateway(self) -> FakeGateway:
        return FakeGateway()


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def payments(gateway: FakeGateway) -> PaymentCommands:
    return PaymentCommands(PaymentsApplication(env=POPO), gateway)


def payment(payments: PaymentCommands, order_id: UUID) -> Payment:
    found = payments.find(order_id)
    assert found is not None
    return found


def authorized(payments: PaymentCommands, amount: Money = AMOUNT) -> UUID:
    order_id = uuid4()
    payments.authorize(order_id, amount, OK)
    assert payment(payments, order_id).status == PaymentStatus.AUTHORIZED
    return order_id


def captured(payments: PaymentCommands, amount: Money = AMOUNT) -> UUID:
    order_id = authorized(payments, amount)
    payments.capture(order_id, amount)
    return order_id


# --- authorizing ----------------------------------------------------------------------------


def test_an_authorization_is_recorded_and_its_reference_indexed(
    payments: PaymentCommands, gateway: FakeGateway
) -> None:
    order_id = uuid4()
    paid, outcome = payments.authorize(order_id, AMOUNT, OK)
    assert isinstance(outcome, Authorized)
    assert gateway.calls == [("authorize", payment_key(order_id, "authorize"))]
    stored = payment(payments, order_id)
    assert (stored.status, stored.authorized, stored.reference, stored.gateway) == (
        PaymentStatus.AUTHORIZED,
        AMOUNT,
        outcome.reference,
        "fake",
    )
    assert stored.order_id == order_id and paid.id == stored.id
    index = payments.app.find(PaymentReference, payment_reference_id("fake", outcome.reference))
    assert index is not None and index.payment_id == stored.id


def test_a_decided_payment_is_not_authorized_again(
    payments: PaymentCommands, gateway: FakeGateway
) -> None:
    ok, declined = uuid4(), uuid4()
    payments.authorize(ok, AMOUNT, OK)
    payments.authorize(declined, AMOUNT, INSUFFICIENT_FUNDS)
    versions = [payment(payments, o).version for o in (ok, declined)]
    for order_id, token in ((ok, OK), (declined, INSUFFICIENT_FUNDS)):
        again, outcome = payments.authorize(order_id, AMOUNT, token)  # a redelivered step
        assert outcome is None and again.version == payment(payments, order_id).version
    assert [payment(payments, o).version for o in (ok, declined)] == versions
    assert len(gateway.calls) == 2


def test_a_declined_card_fails_the_payment_with_the_gateways_reason(
    payments: PaymentCommands,
) -> None:
    order_id = uuid4()
    _, outcome = payments.authorize(order_id, AMOUNT, INSUFFICIENT_FUNDS)
    assert isinstance(outcome, Declined)
    failed = payment(payments, order_id)
    assert (failed.status, failed.failure_code, failed.failure_reason) == (
        PaymentStatus.FAILED,
        "insufficient_funds",
        "Your card has insufficient funds.",
    )
    assert failed.authorized == eur("0")


def test_a_gateway_that_is_down_records_nothing_and_the_retry_authorizes_once(
    payments: PaymentCommands, gateway: FakeGateway
) -> None:
    with pytest.raises(GatewayUnavailable):
        payments.authorize(uuid4(), AMOUNT, UNAVAILABLE)
    order_id = uuid4()
    gateway.fail_next("authorize")
    with pytest.raises(GatewayUnavailable):
        payments.authorize(order_id, AMOUNT, OK)
    assert payments.find(order_id) is None
    payments.authorize(order_id, AMOUNT, OK)
    assert payment(payments, order_id).status == PaymentStatus.AUTHORIZED
    assert gateway.executed["authorize"] == 1


# --- 3-D Secure ----------------------------------------------------------------------------


def test_an_authorization_awaiting_the_shopper_answers_the_same_challenge_again(
    payments: PaymentCommands, gateway: FakeGateway
) -> None:
    order_id = uuid4()
    _, first = payments.authorize(order_id, AMOUNT, THREE_D_SECURE)
    assert isinstance(first, ActionRequired) and first.client_secret
    version = payment(payments, order_id).version
    waiting, again = payments.authorize(order_id, AMOUNT, THREE_D_SECURE)
    assert again == first  # what the storefront needs, replayed by the gateway
    assert waiting.status == PaymentStatus.ACTION_REQUIRED
    assert payment(payments, order_id).version == version
    assert gateway.executed["authorize"] == 1


@pytest.mark.parametrize(
    ("approve", "status"), [(True, PaymentStatus.AUTHORIZED), (False, PaymentStatus.FAILED)]
)
def test_the_end_of_an_authentication_is_recorded_once(
    payments: PaymentCommands, gateway: FakeGateway, approve: bool, status: PaymentStatus
) -> None:
    order_id = uuid4()
    _, action = payments.authorize(order_id, AMOUNT, THREE_D_SECURE)
    assert isinstance(action, ActionRequired)
    assert payments.check_authentication(order_id) is None  # still with the shopper
    gateway.authenticate(action.reference, approve=approve)
    assert payments.check_authentication(order_id) is not None
    assert payments.check_authentication(order_id) is None  # asked again: nothing
    ended = payment(payments, order_id)
    assert ended.status == status
    assert ended.version == 3  # requested, action required, the ending
    with pytest.raises(UnknownGatewayReference):
        payments.check_authentication(uuid4())


def test_a_webhook_ending_an_authentication_is_checked_with_the_gateway(
    payments: PaymentCommands, gateway: FakeGateway
) -> None:
    order_id = uuid4()
    _, action = payments.authorize(order_id, AMOUNT, THREE_D_SECURE)
    assert isinstance(action, ActionRequired)
    # A webhook claiming the payment authorized while the gateway still waits: nothing.
    claimed = Authorized(action.reference, AMOUNT, f"fake:authorized:{action.reference}")
    assert payments.record(claimed) is None
    assert payment(payments, order_id).status == PaymentStatus.ACTION_REQUIRED
    gateway.authenticate(action.reference, approve=True)
    assert payments.record(claimed) is not None
    assert payments.record(claimed) is None  # delivered again
    assert payment(payments, order_id).status == PaymentStatus.AUTHORIZED


# --- capture, void, refund ----------------------------------------------------------------


def test_a_capture_is_made_once_and_never_above_the_authorization(
    payments: PaymentCommands, gateway: FakeGateway
) -> None:
    order_id = authorized(payments)
    with pytest.raises(CaptureExceedsAuthorized):
        payments.capture(order_id, AMOUNT + eur("0.01"))
    assert payment(payments, order_id).status == PaymentStatus.AUTHORIZED
    first, position = payments.capture(order_id, AMOUNT)
    assert position is not None and first.amount == AMOUNT
    again, nothing = payments.capture(order_id, AMOUNT)  # a retried shipment
    assert (again, nothing) == (first, None)
    paid = payment(payments, order_id)
    assert (paid.status, paid.captured, paid.capture_reference) == (
        PaymentStatus.CAPTURED,
        AMOUNT,
        first.capture_id,
    )
    assert gateway.executed["capture"] == 1
    with pytest.raises(UnknownGatewayReference):
        payments.capture(uuid4(), AMOUNT)


def test_void_releases_an_authorization_once_and_nothing_else(
    payments: PaymentCommands, gateway: FakeGateway
) -> None:
    order_id = authorized(payments)
    assert payments.void(order_id) is not None
    assert payments.void(order_id) is None
    assert payment(payments, order_id).status == PaymentStatus.VOIDED
    assert payments.void(uuid4()) is None  # no payment: nothing to void
    declined = uuid4()
    payments.authorize(declined, AMOUNT, DECLINED)
    assert payments.void(declined) is None
    assert payments.void(captured(payments)) is None  # captured: refunded, never voided
    assert gateway.executed["void"] == 1


def test_refunds_are_once_per_key_and_never_above_the_capture(
    payments: PaymentCommands, gateway: FakeGateway
) -> None:
    order_id = captured(payments)
    first = payments.refund(order_id, eur("15.00"), "goodwill-1")
    assert payments.refund(order_id, eur("15.00"), "goodwill-1") == first  # retried
    assert payment(payments, order_id).refunded == eur("15.00")
    with pytest.raises(RefundExceedsCaptured):
        payments.refund(order_id, eur("25.01"), "too-much")
    payments.refund(order_id, eur("25.00"), "the-rest")
    paid = payment(payments, order_id)
    assert (paid.status, paid.refunded) == (PaymentStatus.REFUNDED, AMOUNT)
    assert len(paid.refunds) == 2
    assert gateway.executed["refund"] == 2
    with pytest.raises(UnknownGatewayReference):
        payments.refund(uuid4(), eur("1.00"), "none")


# --- webhooks -----------------------------------------------------------------------------


def test_a_webhook_delivered_twice_records_its_outcome_once(
    payments: PaymentCommands, gateway: FakeGateway
) -> None:
    order_id = captured(payments)
    reference = payment(payments, order_id).reference
    assert reference is not None
    version = payment(payments, order_id).version
    # The capture's webhook, after its API answer was recorded: nothing new.
    capture = gateway.capture(reference, AMOUNT, payment_key(order_id, "capture"))
    assert payments.record(capture) is None
    # A refund made in the gateway's dashboard, reported twice.
    outside = gateway.refund(reference, eur("7.00"), "dashboard-1")
    assert payments.record(outside) is not None
    assert payments.record(outside) is None
    refunded = payment(payments, order_id)
    assert (refunded.version, refunded.refunded) == (version + 1, eur("7.00"))
    assert gateway.executed["capture"] == 1


def test_a_webhook_for_a_payment_we_do_not_know_is_ignored(payments: PaymentCommands) -> None:
    stranger = FakeGateway().authorize(AMOUNT, OK, "another-shop")
    assert payments.record(stranger) is None
    assert payments.record(Declined(None, "card_declined", "No.", "fake:declined:x")) is None


@settings(max_examples=30, deadline=None)
@given(
    capture_cents=st.integers(1, 4000),
    refunds=st.lists(
        st.tuples(st.integers(1, 2500), st.sampled_from(["a", "b", "c", "d"]), st.booleans()),
        max_size=8,
    ),
)
def test_the_payment_and_the_gateway_agree_whatever_refunds_are_asked_and_reported(
    capture_cents: int, refunds: list[tuple[int, str, bool]]
) -> None:
    """Captures and refunds of any amount under reused keys (a reused key with another
    amount is refused, like the gateway), each refund's webhook perhaps delivered too:
    the payment records exactly what the gateway moved, and never refunds more than it
    captured."""
    gateway = FakeGateway()
    payments = PaymentCommands(PaymentsApplication(env=POPO), gateway)
    order_id = authorized(payments)
    payments.capture(order_id, Money.from_minor_units(capture_cents, "EUR"))
    for cents, key, webhook in refunds:
        try:
            refunded = payments.refund(order_id, Money.from_minor_units(cents, "EUR"), key)
        except (RefundExceedsCaptured, IdempotencyKeyReused):
            continue  # refused before any money moved
        if webhook:
            assert payments.record(refunded) is None
    paid = payment(payments, order_id)
    (entry,) = gateway.payments.values()
    assert paid.captured == entry.captured
    assert paid.refunded == entry.refunded <= paid.captured
    assert len(paid.refunds) == gateway.executed["refund"]
    assert paid.status == (
        PaymentStatus.REFUNDED if paid.refunded == paid.captured else PaymentStatus.CAPTURED
    )

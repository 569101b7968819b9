"""A checkout paid with PayPal whose payer must approve it, through the saga: the
order awaits the payer, the approval read back authorizes it under the PayPal
order's id, and cancelling it voids the authorization PayPal made."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import httpx
import pytest

from commands.ordering.checkout_saga import CheckoutSaga
from commands.ordering.payments import PaymentCommands
from domain.access import Principal
from domain.order_status import OrderStatus
from domain.payments import PaymentStatus
from infra.payments.ledger import PaymentLedger
from infra.payments.paypal import PayPalGateway
from infra.wiring.process import Container
from tests.integration.paypal_fake import BASE_URL, VAULT_PAYER_ACTION, PayPalFake
from tests.integration.test_checkout_saga import (
    checkout,
    order,
    payment,
    product,
    run,
    stock,
)

pytestmark = pytest.mark.integration

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))


@pytest.fixture
def paypal_fake() -> Iterator[PayPalFake]:
    fake = PayPalFake()
    with fake.router:
        yield fake


@pytest.fixture
def saga_payments(container: Container, paypal_fake: PayPalFake) -> Iterator[PaymentCommands]:
    with httpx.Client(base_url=BASE_URL, timeout=5) as http:
        gateway = PayPalGateway(
            http, "client-id", "client-secret", PaymentLedger(container.pool, "paypal")
        )
        yield PaymentCommands(container.ordering.payments_app, gateway)


def test_an_order_the_payer_approves_is_confirmed_and_voided_on_cancel(
    container: Container,
    saga_payments: PaymentCommands,
    saga: CheckoutSaga,
    paypal_fake: PayPalFake,
) -> None:
    product_id, sku = product(container)
    order_id = checkout(container, product_id, 2, VAULT_PAYER_ACTION)
    run(container, saga)
    waiting = order(container, order_id)
    assert waiting.status == OrderStatus.AWAITING_AUTHENTICATION
    reference = payment(container, order_id).reference
    assert reference is not None and reference in paypal_fake.orders
    assert stock(container, sku).reservations == {str(order_id): 2}

    paypal_fake.orders[reference]["status"] = "APPROVED"  # the payer approved at PayPal
    assert saga_payments.check_authentication(order_id) is not None
    assert saga_payments.check_authentication(order_id) is None  # recorded once
    run(container, saga)
    assert order(container, order_id).status == OrderStatus.CONFIRMED
    authorized = payment(container, order_id)
    assert (authorized.status, authorized.reference) == (PaymentStatus.AUTHORIZED, reference)
    assert len(paypal_fake.sent("authorize_order")) == 1

    container.ordering.orders.cancel_by_admin(ADMIN, order_id, "out of stock at the warehouse")
    run(container, saga)
    assert payment(container, order_id).status == PaymentStatus.VOIDED
    (void,) = paypal_fake.sent("void_authorization")
    assert void.url.path.startswith("/v2/payments/authorizations/FAKE")  # PayPal's own id
    assert stock(container, sku).available == 5

"""Fixtures shared by the integration tests of the checkout saga."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands.ordering.checkout_saga import CheckoutSaga
from commands.ordering.payments import PaymentCommands
from infra.wiring.process import Container
from tests.integration.test_checkout_saga import make_saga


@pytest.fixture
def saga_payments(container: Container) -> PaymentCommands:
    """The payments the saga takes: the sandbox's; a module overrides it for another
    gateway."""
    return container.ordering.payments


@pytest.fixture
def saga(container: Container, saga_payments: PaymentCommands) -> Iterator[CheckoutSaga]:
    saga = make_saga(container, saga_payments)
    yield saga
    saga.view.datastore.close()  # type: ignore[attr-defined]

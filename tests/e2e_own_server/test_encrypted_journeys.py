"""The registration and checkout journeys again, against a ``shop run`` with
``SHOP_ENCRYPTION_KEY`` set: the same HTTP answers with every event encrypted, and
afterwards not one of the journeys' email addresses is in the stored state."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.e2e import test_checkout_journey as checkout
from tests.e2e import test_users_flow as users
from tests.support.production import ENCRYPTION_KEY
from tests.support.server import NO_ADDRESS_LIMITS, Server, running_server
from tests.support.side_door import stored_states

pytestmark = pytest.mark.e2e

test_the_whole_journey = users.test_the_whole_journey
test_cart_checkout_ship_deliver_return_refund = (
    checkout.test_cart_checkout_ship_deliver_return_refund
)


@pytest.fixture(scope="module")
def server(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with running_server(
        make_database(),
        tmp_path_factory.mktemp("shop-encrypted"),
        {"SHOP_ENCRYPTION_KEY": ENCRYPTION_KEY, **NO_ADDRESS_LIMITS},
    ) as running:
        yield running
        states = stored_states(running.database_url)
    assert len(states) > 20  # the journeys wrote: the check below looked at something
    assert not [state for state in states if b"@example.com" in state]

"""The main journeys again (registration, a seller's catalog, stock and reviews,
checkout with its refund, 3-D Secure, a free order, notification preferences),
against a ``shop run`` with ``SHOP_ENCRYPTION_KEY`` set: the same HTTP answers with
every event encrypted, and afterwards not one of the journeys' email addresses is in
the stored state."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.e2e import test_catalog_commands as catalog
from tests.e2e import test_checkout_3ds as threeds
from tests.e2e import test_checkout_journey as checkout
from tests.e2e import test_free_orders as free
from tests.e2e import test_notification_preferences as preferences
from tests.e2e import test_users_flow as users
from tests.support.production import ENCRYPTION_KEY
from tests.support.server import NO_ADDRESS_LIMITS, Server, running_server
from tests.support.side_door import stored_states

pytestmark = pytest.mark.e2e

test_the_whole_journey = users.test_the_whole_journey
test_cart_checkout_ship_deliver_return_refund = (
    checkout.test_cart_checkout_ship_deliver_return_refund
)
test_a_declined_card_rejects_the_order_and_gives_the_stock_back = (
    checkout.test_a_declined_card_rejects_the_order_and_gives_the_stock_back
)
test_a_seller_manages_their_product = catalog.test_a_seller_manages_their_product
test_sellers_receive_and_adjust_their_stock = catalog.test_sellers_receive_and_adjust_their_stock
test_reviews_replies_and_hiding = catalog.test_reviews_replies_and_hiding
test_an_approved_challenge_confirms_the_order = (
    threeds.test_an_approved_challenge_confirms_the_order
)
test_a_free_order_is_confirmed_shipped_and_delivered_without_a_payment = (
    free.test_a_free_order_is_confirmed_shipped_and_delivered_without_a_payment
)
test_set_merge_and_read_back = preferences.test_set_merge_and_read_back


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

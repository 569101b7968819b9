"""Checkout through the scaled mode (tests/e2e/test_checkout_journey.py): the saga runs
in a worker, off the ordering and payments topics."""

import pytest

from tests.e2e import test_checkout_journey as journey

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("scaled-deployment")]

test_cart_checkout_ship_deliver_return_refund = (
    journey.test_cart_checkout_ship_deliver_return_refund
)
test_a_declined_card_rejects_the_order_and_gives_the_stock_back = (
    journey.test_a_declined_card_rejects_the_order_and_gives_the_stock_back
)
test_short_stock_rejects_the_order_without_charging = (
    journey.test_short_stock_rejects_the_order_without_charging
)
test_a_guest_cart_merges_into_the_account_cart_at_login = (
    journey.test_a_guest_cart_merges_into_the_account_cart_at_login
)

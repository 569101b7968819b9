"""The customer's catalog journey through the scaled mode (tests/e2e/
test_customer_search_journey.py): products written to the write API, found through the
read API in the views the workers build."""

import pytest

from tests.e2e import test_customer_search_journey as journey

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("scaled-deployment")]

shop = journey.shop  # the fixture: products written over HTTP, module-wide

test_a_customer_finds_products_by_prefix_filters_and_facets = (
    journey.test_a_customer_finds_products_by_prefix_filters_and_facets
)
test_a_customer_opens_and_reviews_a_product = journey.test_a_customer_opens_and_reviews_a_product
test_a_seller_cannot_edit_another_sellers_product = (
    journey.test_a_seller_cannot_edit_another_sellers_product
)

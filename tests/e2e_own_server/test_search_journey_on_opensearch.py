"""The customer's search journey (``test_customer_search_journey``) again, against a
``shop run`` configured with ``SHOP_OPENSEARCH_URL`` (an osmem-server clone): the
same HTTP answers whatever the search adapter. Every search there carries the
consistency token of the writes, so this also proves that read-your-writes waits for
the index, which the process's background indexer fills from the view."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e import test_customer_search_journey as journey
from tests.support.server import NO_ADDRESS_LIMITS, Server, running_server

pytestmark = pytest.mark.e2e

shop = journey.shop  # the fixture: products written over HTTP, module-wide

test_a_customer_finds_products_by_prefix_filters_and_facets = (
    journey.test_a_customer_finds_products_by_prefix_filters_and_facets
)
test_pages_cover_every_match_once_in_order = journey.test_pages_cover_every_match_once_in_order
test_a_typo_still_finds_the_product = journey.test_a_typo_still_finds_the_product
test_a_customer_opens_and_reviews_a_product = journey.test_a_customer_opens_and_reviews_a_product
test_malformed_searches_are_refused = journey.test_malformed_searches_are_refused


@pytest.fixture(scope="module")
def server(
    make_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
    osmem_server: Any,
) -> Iterator[Server]:
    settings = {
        # osmem-server, the test server, takes up to seconds per bulk request.
        "SHOP_READ_YOUR_WRITES_TIMEOUT": "15",
        **NO_ADDRESS_LIMITS,
    }
    with (
        osmem_server.clone() as clone,
        running_server(
            make_database(),
            tmp_path_factory.mktemp("shop-opensearch"),
            {"SHOP_OPENSEARCH_URL": clone.url, **settings},
        ) as running,
    ):
        yield running
    assert "search index: products serves products_g1_1" in running.log_path.read_text()

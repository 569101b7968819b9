"""The OpenSearch indexer against osmem-server: exactly-once documents over
at-least-once passes, rebuilds when OpenSearch loses the index or a rebuild of
``catalog_products`` swaps a generation in, resuming after a restart, lag, and the
background thread as ``shop run`` starts it. The catalog is written through the
real command path (``test_catalog_projections``' world)."""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal
from opensearchpy import OpenSearch

from domain.money import Money
from infra.opensearch.index import ProductIndexer, load_position
from infra.settings import Settings
from infra.wiring.process import Container
from projections.catalog.product_feed import changed_products
from projections.catalog.search import ProductFilter, SearchUnavailable
from projections.engine import generation_schema
from tests.integration import test_search_contract as contract
from tests.integration.test_catalog_projections import SELLER, World, activate, build
from tests.integration.test_search_contract import Adapter, Shop, http_get
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

world, portal, shop = contract.world, contract.portal, contract.shop  # fixtures


class TestProductIndexer:
    @pytest.fixture
    def settings(self, settings: Settings, osmem_url: str) -> Settings:
        return settings.model_copy(update={"opensearch_url": osmem_url})

    @pytest.fixture
    def indexer(self, container: Container) -> ProductIndexer:
        assert container.search_indexer is not None
        return container.search_indexer

    @pytest.fixture
    def adapter(self, container: Container, indexer: ProductIndexer) -> Adapter:
        assert container.catalog_search is not None
        return Adapter(container.catalog_search, indexer.sync)

    def test_a_repeated_pass_changes_nothing(self, shop: Shop, indexer: ProductIndexer) -> None:
        before = documents(indexer)
        assert len(before) == len(shop.world.products)  # every product, published or not
        with shop.world.container.pool.connection() as conn:
            conn.execute("UPDATE public.search_index_positions SET revision = 0")
        assert indexer.sync() == len(before)  # all sent again, each refused with a 409
        assert documents(indexer) == before  # same versions, same sequence numbers

    def test_an_older_revision_never_overwrites_a_newer_document(
        self, shop: Shop, indexer: ProductIndexer
    ) -> None:
        s = shop
        with s.world.container.pool.connection() as conn:
            stale = changed_products(conn, generation_schema("catalog_products", 1), 0, 1000)
            position = load_position(conn, indexer.alias)
        assert position is not None
        s.world.catalog.change_price(SELLER, s.id("espresso"), Money.of("99", "EUR"))
        s.project()
        newer = documents(indexer)[str(s.id("espresso"))]
        indexer.index_rows(position.index, stale)  # a slow indexer's batch, arriving late
        assert documents(indexer)[str(s.id("espresso"))] == newer
        (item,) = s.search("espresso").items
        assert item["price"]["amount"] == "99.00"

    def test_a_lost_index_is_rebuilt(self, shop: Shop, indexer: ProductIndexer) -> None:
        s = shop
        expected = {text: s.ids(text) for text in ("aurora", "widget", "expresso")}
        position = current_position(s, indexer)
        indexer.client.indices.delete(index=position.index)  # OpenSearch lost its memory
        with pytest.raises(SearchUnavailable):
            s.search("aurora")
        answer = s.portal.call(partial(http_get, s, "/search", {"q": "aurora"}, {}))
        assert answer.status_code == 503, answer.text
        assert answer.json()["type"].endswith("/search-unavailable")
        assert answer.headers["retry-after"] == "1"
        # A late write auto-creates an index of that name: not ours, since the alias
        # is not on it.
        with s.world.container.pool.connection() as conn:
            rows = changed_products(conn, generation_schema("catalog_products", 1), 0, 5)
        indexer.index_rows(position.index, rows)
        assert indexer.sync() == len(s.world.products)
        rebuilt = current_position(s, indexer)
        assert rebuilt.index == "products_g1_2" and rebuilt.generation == 1
        assert indices(indexer) == {"products_g1_2": ["products"]}
        assert {text: s.ids(text) for text in expected} == expected

    def test_a_generation_swap_moves_the_alias(self, shop: Shop, indexer: ProductIndexer) -> None:
        s = shop
        expected = {text: s.ids(text) for text in ("aurora", "widget", "kettle")}
        assert indices(indexer) == {"products_g1_1": ["products"]}
        build(s.world, 2)  # `shop projections rebuild`: a fresh generation, then the swap
        activate(s.world, 2)
        assert {text: s.ids(text) for text in expected} == expected  # the old index serves
        assert indexer.sync() == len(s.world.products)
        assert indices(indexer) == {"products_g2_1": ["products"]}
        position = current_position(s, indexer)
        assert (position.index, position.generation) == ("products_g2_1", 2)
        assert {text: s.ids(text) for text in expected} == expected
        # It follows the new generation's feed from then on.
        s.world.catalog.change_price(SELLER, s.id("kettle"), Money.of("12.50", "EUR"))
        s.project()
        assert s.search("kettle").items[0]["price"]["amount"] == "12.50"

    def test_a_restart_resumes_where_it_was(
        self, shop: Shop, indexer: ProductIndexer, container: Container
    ) -> None:
        s = shop
        restarted = ProductIndexer(indexer.client, container.pool, indexer.alias)
        assert restarted.sync() == 0
        s.world.catalog.change_price(SELLER, s.id("kettle"), Money.of("30", "EUR"))
        s.world.inventory.receive(SELLER, s.world.catalog.get_product(s.id("case")).sku, 2)
        before = current_position(s, indexer)
        project_views(s)
        with container.pool.connection() as conn:
            assert indexer.status(conn).lag == 2
        assert restarted.sync() == 2  # the kettle and the case, nothing else
        after = current_position(s, indexer)
        assert after.index == before.index and after.revision == before.revision + 2
        with container.pool.connection() as conn:
            status = indexer.status(conn)
        assert (status.generation, status.lag) == (1, 0)
        in_stock = set(s.ids("aurora", ProductFilter(in_stock=True)))
        assert in_stock == {s.id("smartphone"), s.id("case")}

    def test_search_waits_for_the_index_with_a_consistency_token(
        self, shop: Shop, indexer: ProductIndexer, container: Container
    ) -> None:
        s = shop
        written = s.world.catalog.change_price(SELLER, s.id("kettle"), Money.of("33", "EUR"))
        project_views(s)  # the view has the change, the index not yet
        stale = s.portal.call(partial(http_get, s, "/search", {"q": "kettle"}, {}))
        assert stale.json()["items"][0]["price"]["amount"] == "45.00"  # no token: no wait
        lagging = s.portal.call(
            partial(
                http_get,
                s,
                "/search",
                {"q": "kettle"},
                {"X-Consistency-Token": str(written.position)},
            )
        )
        assert lagging.status_code == 503 and lagging.json()["type"].endswith("/projection-lagging")
        indexer.sync()
        fresh = s.portal.call(
            partial(http_get, s, "/search", {"q": "kettle", "after": str(written.position)}, {})
        )
        assert fresh.status_code == 200 and fresh.json()["items"][0]["price"]["amount"] == "33.00"


class TestBackgroundIndexer:
    @pytest.fixture
    def settings(self, settings: Settings, osmem_url: str) -> Settings:
        return settings.model_copy(
            update={"opensearch_url": osmem_url, "read_your_writes_timeout": 10.0}
        )

    def test_shop_run_indexes_what_the_projections_write(
        self, world: World, portal: BlockingPortal, container: Container
    ) -> None:
        """As ``shop run`` starts it: with the projections, following them live."""
        assert container.catalog_search is not None and container.search_indexer is not None
        engine = container.catalog_search
        container.start_projections()

        def espresso_price() -> Any:
            try:
                found = portal.call(partial(engine.search, "espresso", ProductFilter()))
            except SearchUnavailable:  # until the first index is built
                return None
            return found.items[0]["price"]["amount"] if found.items else None

        assert eventually(espresso_price) == "229.00"
        world.catalog.change_price(SELLER, world.products["espresso"], Money.of("199", "EUR"))
        assert eventually(lambda: espresso_price() == "199.00")
        assert container.search_indexer.errors() == {}
        facets = portal.call(partial(engine.search, "espresso", ProductFilter())).facets
        assert facets is not None
        counts = {Decimal(b["min"]): b["count"] for b in facets["price"][0]["buckets"]}
        assert counts[Decimal(100)] == 1 and sum(counts.values()) == 1


def project_views(s: Shop) -> None:
    """The catalog views catch up, the search index does not."""
    catch_up, s.adapter.catch_up = s.adapter.catch_up, lambda: None
    try:
        s.project()
    finally:
        s.adapter.catch_up = catch_up


def current_position(s: Shop, indexer: ProductIndexer) -> Any:
    with s.world.container.pool.connection() as conn:
        position = load_position(conn, indexer.alias)
    assert position is not None
    return position


def documents(indexer: ProductIndexer) -> dict[str, tuple[int, int, dict[str, Any]]]:
    """Every document behind the alias: version, sequence number, source."""
    client: OpenSearch = indexer.client
    ids = [
        hit["_id"]
        for hit in client.search(index=indexer.alias, body={"size": 1000, "_source": False})[
            "hits"
        ]["hits"]
    ]
    found = {}
    for doc_id in ids:
        doc = client.get(index=indexer.alias, id=doc_id)
        found[doc_id] = (doc["_version"], doc["_seq_no"], doc["_source"])
    return found


def indices(indexer: ProductIndexer) -> dict[str, list[str]]:
    """Our indices, each with its aliases."""
    found = indexer.client.indices.get_alias(index=f"{indexer.alias}_g*")
    return {name: sorted(info["aliases"]) for name, info in found.items()}

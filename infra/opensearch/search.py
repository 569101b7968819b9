"""The OpenSearch adapter of catalog search (``projections.catalog.search``).

Same contract as the PostgreSQL adapter, on the index ``infra.opensearch.index``
keeps:

- The text is split into words by ``projections.catalog.search.search_terms`` (so
  both adapters refuse the same input); every word must match, as a prefix, the name,
  SKU, attribute values or description (the ``.prefix`` edge-ngram fields).
  Relevance is the sum over the words of the weight of the best field each matches
  (5/5/2/1, like the Postgres weights A/A/B/C), not BM25: see ``_words``.
- When that finds nothing on a first page, typo tolerance: each word of 3 or more
  characters may also match a word of a name or an attribute value a few edits
  away (``TYPO_EDITS``; Postgres corrects against the same vocabulary with
  trigram similarity). ``mode`` and the cursor say which of the two a page is.
- Pages are ``search_after`` over the sort plus the id; the cursor is opaque
  (``projections.cursors``) and names the adapter, sort and mode it belongs to.
- Facets are aggregations over every match: category ids (named from
  ``read.catalog_categories``), price ranges per currency with the Postgres edges,
  and minimum-rating buckets; the same shape as the Postgres adapter's.

The client is synchronous (opensearch-py without aiohttp): calls run in worker
threads.
"""

from __future__ import annotations

import math
import time
from functools import partial
from itertools import pairwise
from typing import Any
from uuid import UUID

import anyio.to_thread
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchUnreachable
from opensearchpy.exceptions import NotFoundError, TransportError
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from infra.opensearch.index import (
    PRICE_SCALE,
    RATING_SCALE,
    attribute_term,
    feed_head,
    indexed_through,
    listing_row,
    scaled,
)
from projections.catalog.product_items import product_item
from projections.catalog.products import PUBLISHED
from projections.catalog.search import (
    MAX_CATEGORY_FACETS,
    MIN_CORRECTED_TERM,
    PRICE_EDGES,
    RATING_BUCKETS,
    ProductFilter,
    SearchResult,
    SearchUnavailable,
    price_buckets,
    search_terms,
)
from projections.cursors import BadCursor, decode_cursor, encode_cursor
from projections.positions import wait_until_async

_FIELD_WEIGHTS = {
    "name.prefix": 5,
    "sku.prefix": 5,
    "attribute_values.prefix": 2,
    "description.prefix": 1,
}
"""What a word matching each field adds to the relevance (Postgres weights A, A, B, C)."""
_CORRECTED_FIELDS = ["name", "attribute_values"]
_CORRECTED_WEIGHT = 1
TYPO_EDITS = "AUTO:4,8"
"""Edits a misspelt word may be from a catalog word: none under 4 characters, one
under 8, else two. Plain ``AUTO`` (one edit from 3, two from 6) lets ``gadget``
find ``widget``; these bounds keep about the strictness of the Postgres adapter's
trigram similarity of 0.4."""

_SORTS: dict[str, tuple[list[dict[str, str]], list[type]]] = {
    "relevance": ([{"_score": "desc"}, {"id": "desc"}], [float, str]),
    "price_asc": ([{"price": "asc"}, {"id": "asc"}], [int, str]),
    "price_desc": ([{"price": "desc"}, {"id": "desc"}], [int, str]),
    "newest": ([{"created": "desc"}, {"id": "desc"}], [int, str]),
    "rating": ([{"rating": "desc"}, {"rating_count": "desc"}, {"id": "desc"}], [int, int, str]),
}
"""Each sort with the id as tiebreaker, and the types of its ``search_after`` values."""

_EDGES = [scaled(edge, PRICE_SCALE) for edge in PRICE_EDGES]
_PRICE_RANGES = [
    *({"from": low, "to": high} for low, high in pairwise(_EDGES)),
    {"from": _EDGES[-1]},  # the last bucket is open, as in Postgres
]
_AGGREGATIONS: dict[str, Any] = {
    "categories": {"terms": {"field": "category_path", "size": MAX_CATEGORY_FACETS}},
    "currencies": {
        "terms": {"field": "currency", "size": 100},
        "aggs": {"price": {"range": {"field": "price", "ranges": _PRICE_RANGES}}},
    },
    "ratings": {
        "filters": {
            "filters": {
                str(stars): {"range": {"rating": {"gte": stars * RATING_SCALE}}}
                for stars in RATING_BUCKETS
            }
        }
    },
}


class OpenSearchCatalogSearch:
    def __init__(
        self,
        client: OpenSearch,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        alias: str = "products",
    ) -> None:
        self._client = client
        self._pool = pool
        self._alias = alias

    async def search(
        self,
        text: str,
        filters: ProductFilter,
        sort: str = "relevance",
        cursor: str | None = None,
        limit: int = 24,
        facets: bool = True,
    ) -> SearchResult:
        if sort not in _SORTS:
            raise BadCursor(f"unknown sort {sort!r}")
        terms = search_terms(text)
        order, types = _SORTS[sort]
        mode, after = ("exact", None) if cursor is None else _decode(cursor, sort, types)
        body: dict[str, Any] = {
            "size": limit + 1,
            "sort": order,
            "_source": ["row"],
            "track_total_hits": facets and cursor is None,
        }
        if after is not None:
            body["search_after"] = after
        if facets and cursor is None:
            body["aggs"] = _AGGREGATIONS
        found = await self._search(body, terms, filters, fuzzy=mode == "fuzzy")
        if mode == "exact" and cursor is None and not found["hits"]["hits"]:
            mode = "fuzzy"
            found = await self._search(body, terms, filters, fuzzy=True)
        hits = found["hits"]["hits"]
        next_cursor = None
        if len(hits) > limit:
            hits = hits[:limit]
            next_cursor = encode_cursor(f"os:{sort}:{mode}", hits[-1]["sort"])
        items = [product_item(listing_row(hit["_source"]["row"])) for hit in hits]
        if not (facets and cursor is None):
            return SearchResult(items, next_cursor, mode, None, None)
        total = int(found["hits"]["total"]["value"])
        return SearchResult(items, next_cursor, mode, total, await self._facets(found))

    async def _search(
        self, body: dict[str, Any], terms: list[str], where: ProductFilter, *, fuzzy: bool
    ) -> dict[str, Any]:
        query = {"bool": {"must": _words(terms, fuzzy=fuzzy), "filter": _filters(where)}}
        call = partial(self._client.search, index=self._alias, body={**body, "query": query})
        try:
            found: dict[str, Any] = await anyio.to_thread.run_sync(call)
        except NotFoundError as error:
            raise SearchUnavailable("the search index is being rebuilt") from error
        except OpenSearchUnreachable as error:
            raise SearchUnavailable("the search engine is unreachable") from error
        except TransportError as error:
            if isinstance(error.status_code, int) and error.status_code >= 500:
                raise SearchUnavailable("the search engine failed to answer") from error
            raise
        return found

    async def _facets(self, found: dict[str, Any]) -> dict[str, Any]:
        aggregations = found["aggregations"]
        counts = [
            (UUID(bucket["key"]), int(bucket["doc_count"]))
            for bucket in aggregations["categories"]["buckets"]
        ]
        names: dict[UUID, str] = {}
        if counts:
            async with self._pool.connection() as conn:
                names = await category_names(conn, [category for category, _ in counts])
        currencies = sorted(aggregations["currencies"]["buckets"], key=lambda b: str(b["key"]))
        ratings = aggregations["ratings"]["buckets"]
        return {
            "categories": [
                {"id": category, "name": names.get(category), "count": n} for category, n in counts
            ],
            "price": [
                price_buckets(
                    str(currency["key"]),
                    {i: int(r["doc_count"]) for i, r in enumerate(currency["price"]["buckets"], 1)},
                )
                for currency in currencies
            ],
            "rating": [
                {"min": stars, "count": int(ratings[str(stars)]["doc_count"])}
                for stars in RATING_BUCKETS
            ],
        }

    async def wait_until_indexed(self, timeout: float) -> bool:
        """Waits for the index to hold ``catalog_products`` as it is when called
        (its generation and last revision)."""
        started = time.monotonic()
        async with self._pool.connection() as conn:
            generation, head = await feed_head(conn)

        async def done() -> bool:
            async with self._pool.connection() as conn:
                return await indexed_through(conn, self._alias, generation, head)

        return await wait_until_async(done, timeout - (time.monotonic() - started))


def _decode(cursor: str, sort: str, types: list[type]) -> tuple[str, list[Any]]:
    for mode in ("exact", "fuzzy"):
        try:
            return mode, decode_cursor(cursor, f"os:{sort}:{mode}", types)
        except BadCursor:
            continue
    raise BadCursor("the cursor is not one this API issued for this query")


def _words(terms: list[str], *, fuzzy: bool) -> list[dict[str, Any]]:
    """One clause per word, all must match. A word scores the weight of the best
    field it matches (``constant_score``), a product the sum over its words: whole
    numbers, so ``search_after`` on the score is exact, and pages stay put while
    the index changes (BM25 scores move with every document indexed)."""
    clauses: list[dict[str, Any]] = []
    for term in terms:
        options = [
            _weighted({"match": {field: {"query": term, "operator": "and"}}}, weight)
            for field, weight in _FIELD_WEIGHTS.items()
        ]
        if fuzzy and len(term) >= MIN_CORRECTED_TERM:
            typo = {
                "multi_match": {
                    "query": term,
                    "fields": _CORRECTED_FIELDS,
                    "fuzziness": TYPO_EDITS,
                    "operator": "and",
                }
            }
            options.append(_weighted(typo, _CORRECTED_WEIGHT))
        clauses.append({"dis_max": {"queries": options}})
    return clauses


def _weighted(query: dict[str, Any], weight: int) -> dict[str, Any]:
    return {"constant_score": {"filter": query, "boost": weight}}


def _filters(where: ProductFilter) -> list[dict[str, Any]]:
    """The Postgres adapter's filters (``product_queries.where_clauses``), on indexed fields."""
    clauses: list[dict[str, Any]] = [{"term": {"status": PUBLISHED}}]
    if where.category_id is not None:
        clauses.append({"term": {"category_path": str(where.category_id)}})
    if where.currency is not None:
        clauses.append({"term": {"currency": where.currency}})
    price: dict[str, int] = {}
    if where.min_price is not None:
        price["gte"] = math.ceil(where.min_price * PRICE_SCALE)
    if where.max_price is not None:
        price["lte"] = math.floor(where.max_price * PRICE_SCALE)
    if price:
        clauses.append({"range": {"price": price}})
    if where.min_rating is not None:
        clauses.append({"range": {"rating_count": {"gt": 0}}})
        clauses.append({"range": {"rating": {"gte": math.ceil(where.min_rating * RATING_SCALE)}}})
    if where.in_stock is not None:
        clauses.append({"term": {"in_stock": where.in_stock}})
    for name, value in sorted(where.attributes.items()):
        clauses.append({"term": {"attributes": attribute_term(name, value)}})
    return clauses


async def category_names(conn: AsyncConnection[Any], ids: list[UUID]) -> dict[UUID, str]:
    """The names of these categories (unknown ids are left out): the facets count
    category ids (the index holds no names), and are named from the categories view."""
    cursor = await conn.execute(
        "SELECT id, name FROM read.catalog_categories WHERE id = ANY(%s)", (ids,)
    )
    return {row[0]: row[1] for row in await cursor.fetchall()}

"""Search over ``read.catalog_products``: the PostgreSQL adapter's implementation
(``search_postgres`` wraps ``search_products``), in the port's vocabulary
(``projections.catalog.search``).

- The text is reduced to at most ``MAX_TERMS`` words of letters and digits; every
  word is a prefix (``'word':*``), all must match. Nothing a client sends reaches
  ``to_tsquery`` unparsed, so no input makes it fail.
- When that finds nothing and pg_trgm is installed, typo tolerance: each word may
  also be its most similar word (trigram similarity) in the catalog's vocabulary
  (``catalog_products_words``: the words of product names and attribute values),
  and the full-text search runs again with those alternatives, on the same GIN
  index. The cursor remembers which of the two a result came from.
- Facets are counted over every match (all filters applied), not just the page:
  categories (each product counts under its categories and their ancestors), price
  buckets with fixed edges per currency, and minimum-rating buckets.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.sql import SQL, Composed

from projections.catalog.product_items import LIST_COLUMNS
from projections.catalog.product_queries import KEYSETS, keyset_page, paged, where_clauses
from projections.catalog.search import (
    MAX_CATEGORY_FACETS,
    MIN_CORRECTED_TERM,
    PRICE_EDGES,
    RATING_BUCKETS,
    WORD,
    ProductFilter,
    SearchResult,
    price_buckets,
    search_terms,
)
from projections.cursors import BadCursor, decode_cursor

TYPO_SIMILARITY = 0.4
"""pg_trgm similarity a catalog word needs to stand in for a misspelt search word."""
SEARCH_CANDIDATES = 2_000
"""How many matches a search ranks by relevance and counts for its total and facets
(``SHOP_SEARCH_CANDIDATES``): every match of most searches, the first 2,000 of a
common word's (a colour matches ~90,000 of a million products). Beyond it the work of
a search no longer grows with its matches; OpenSearch likewise stops counting hits
exactly past a bound (``track_total_hits``, 10,000) and pages no deeper than
``max_result_window``. 2,000: the bound at which the search benchmark at a million
products met its latency target (its figures at 10,000, 5,000 and 2,000 candidates are
in bench/README.md, "Fifth pass")."""


def prefix_tsquery(terms: list[str]) -> str:
    """``'red':* & 'sho':*``. Terms hold only letters and digits, so quoting them
    is enough to make any input a valid tsquery."""
    return " & ".join(f"'{term}':*" for term in terms)


_TRIGRAM_AVAILABLE: dict[tuple[str, int, str], bool] = {}


async def _has_trigram(conn: AsyncConnection[Any]) -> bool:
    """Whether pg_trgm is installed in ``public`` (where the catalog view puts it),
    asked once per database."""
    key = (conn.info.host, conn.info.port, conn.info.dbname)
    if key not in _TRIGRAM_AVAILABLE:
        cursor = await conn.execute(
            "SELECT 1 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm' AND n.nspname = 'public'"
        )
        _TRIGRAM_AVAILABLE[key] = await cursor.fetchone() is not None
    return _TRIGRAM_AVAILABLE[key]


async def search_products(
    conn: AsyncConnection[Any],
    text: str,
    where: ProductFilter,
    sort: str = "relevance",
    after: str | None = None,
    limit: int = 24,
    *,
    facets: bool = True,
    candidates: int = SEARCH_CANDIDATES,
) -> SearchResult:
    """Published products matching ``text`` and ``where``. Facets (and the total)
    come with the first page only (``after`` None), as a storefront shows them.
    Relevance ranks, and the total and facets count, the first ``candidates``
    matches (all of them when fewer match); the other sorts order every match."""
    if sort not in KEYSETS:
        raise BadCursor(f"unknown sort {sort!r}")
    terms = search_terms(text)
    mode = "exact" if after is None else _cursor_mode(after)
    search = _Search(conn, where, sort, limit, candidates)
    async with conn.transaction():  # one snapshot for the page and its facets
        # No JIT: at a million products a common word's plan crosses jit_above_cost,
        # and compiling costs more than the query saves. work_mem: room in memory for
        # the candidates that ``_first_page`` materialises.
        await conn.execute("SET LOCAL jit = off; SET LOCAL work_mem = '32MB'")
        found = _Found([])
        if mode == "exact":
            found = await search.run(prefix_tsquery(terms), mode, after, facets)
            if not found.rows and after is None and await _has_trigram(conn):
                mode = "fuzzy"
        if mode == "fuzzy":
            corrected = await _corrected_tsquery(conn, terms)
            if corrected is not None:
                found = await search.run(corrected, mode, after, facets)
            elif after is None and facets:
                found = _Found([], 0, _no_facets())
        page = paged(found.rows, sort, mode, limit)
    return SearchResult(
        page.items, page.next_cursor, mode, found.total, found.facets, found.exhaustive
    )


async def _corrected_tsquery(conn: AsyncConnection[Any], terms: list[str]) -> str | None:
    """Typo tolerance: each word of 3 or more characters may also be the most similar
    word of the catalog's vocabulary (product names and attribute values, pg_trgm
    similarity at least ``TYPO_SIMILARITY``). None when no word has a correction."""
    if not await _has_trigram(conn):
        return None
    await conn.execute(
        "SELECT set_config('pg_trgm.similarity_threshold', %s, true)", (str(TYPO_SIMILARITY),)
    )
    alternatives: list[str] = []
    corrected = False
    for term in terms:
        options = [f"'{term}':*"]
        if len(term) >= MIN_CORRECTED_TERM:
            cursor = await conn.execute(
                "SELECT word FROM read.catalog_products_words "
                "WHERE word OPERATOR(public.%%) %s "
                "ORDER BY public.similarity(word, %s) DESC, word LIMIT 1",
                (term, term),
            )
            found = await cursor.fetchone()
            if found is not None and found[0] != term and WORD.fullmatch(found[0]):
                options.append(f"'{found[0]}'")
                corrected = True
        alternatives.append("(" + " | ".join(options) + ")")
    return " & ".join(alternatives) if corrected else None


def _cursor_mode(after: str) -> str:
    try:
        padded = after + "=" * (-len(after) % 4)
        kind = json.loads(base64.urlsafe_b64decode(padded.encode()))[0]
        mode = str(kind).rsplit(":", 1)[1]
    except (ValueError, TypeError, IndexError, KeyError) as error:
        raise BadCursor("the cursor is not one this API issued for this query") from error
    if mode not in ("exact", "fuzzy"):
        raise BadCursor("the cursor is not one this API issued for this query")
    return mode


@dataclass(frozen=True)
class _Found:
    rows: list[dict[str, Any]]
    """A page's rows (``limit + 1`` when there are more)."""
    total: int | None = None
    facets: dict[str, Any] | None = None
    """With the first page: the total and every facet."""
    exhaustive: bool = True


_RATINGS = SQL(", ").join(
    SQL(f"'r{stars}', count(*) FILTER (WHERE rating_count > 0 AND rating_avg >= {stars})")
    for stars in RATING_BUCKETS
)
_FACETS = SQL(
    "SELECT (SELECT json_build_object('total', count(*), {ratings}) FROM m) AS counts, "
    "(SELECT coalesce(json_agg(x ORDER BY x.count DESC, x.id), '[]') FROM ("
    "  SELECT f.id, c.name, f.count FROM ("
    "    SELECT unnest(category_path) AS id, count(*) AS count FROM m "
    "    GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s) f "
    "  LEFT JOIN read.catalog_categories c ON c.id = f.id) x) AS categories, "
    "(SELECT coalesce(json_agg(y), '[]') FROM ("
    "  SELECT currency, width_bucket(price_amount, %s::numeric[]) AS bucket, "
    "  count(*) AS count FROM m GROUP BY 1, 2) y) AS prices"
).format(ratings=_RATINGS)
"""Every facet, over the candidates ``m``."""

_CANDIDATES = (
    "SELECT id, {rank} AS rank, price_amount, created_at, rating_avg, rating_count, "
    "category_path, currency FROM read.catalog_products_matches WHERE {where} LIMIT %s"
)
"""The first ``candidates`` matches, in storage order: bounded work for any query (a
colour matches ~90,000 of a million products), read from the narrow copy of published
products that a search scans (``catalog_products_matches``, see catalog_triggers)."""

_RANK = "ts_rank(rank_terms, to_tsquery('simple', %s))::float8"
"""Relevance: where the words occur, in the name and SKU (weight A) or an attribute
value (B); a match in the description only ranks after those."""


@dataclass(frozen=True)
class _Search:
    """One search's statements, for a tsquery (the exact one, or the corrected one)."""

    conn: AsyncConnection[Any]
    where: ProductFilter
    sort: str
    limit: int
    candidates: int

    async def run(self, tsquery: str, mode: str, after: str | None, facets: bool) -> _Found:
        if after is None and facets:
            found = await self._first_page(tsquery)
            if found.exhaustive or self.sort == "relevance":
                return found
            # The candidates are not every match: the page walks the sort's index.
            return _Found(
                await self._sorted(tsquery, mode, None), found.total, found.facets, exhaustive=False
            )
        if self.sort == "relevance":
            return _Found(await self._ranked(tsquery, mode, after))
        return _Found(await self._sorted(tsquery, mode, after))

    def _candidates(self, tsquery: str, rank: bool) -> tuple[Composed, list[Any]]:
        clauses, params = where_clauses(self.where, matches=True)
        statement = SQL(_CANDIDATES).format(
            rank=SQL(_RANK if rank else "0::float8"),
            where=SQL(" AND ".join(["terms @@ to_tsquery('simple', %s)", *clauses])),
        )
        return statement, [*([tsquery] if rank else []), tsquery, *params, self.candidates]

    async def _sorted(self, tsquery: str, mode: str, after: str | None) -> list[dict[str, Any]]:
        clauses, params = where_clauses(self.where)
        return await keyset_page(
            self.conn,
            ["search @@ to_tsquery('simple', %s)", *clauses],
            [tsquery, *params],
            self.sort,
            mode,
            after,
            self.limit,
        )

    async def _ranked(self, tsquery: str, mode: str, after: str | None) -> list[dict[str, Any]]:
        """A relevance page without the facets (one after the first, or a first one
        asked for without them): the best of the candidates after ``after``, by rank."""
        candidates, params = self._candidates(tsquery, rank=True)
        keyset = KEYSETS["relevance"]
        after_values = (
            [] if after is None else decode_cursor(after, f"relevance:{mode}", keyset.types)
        )
        statement = SQL(
            "WITH m AS MATERIALIZED ({candidates}), "
            "t AS (SELECT id, rank FROM m {after} ORDER BY rank DESC, id DESC LIMIT %s) "
            "SELECT {columns}, t.rank FROM t JOIN read.catalog_products p ON p.id = t.id "
            "ORDER BY t.rank DESC, t.id DESC"
        ).format(
            candidates=candidates,
            after=SQL("WHERE (rank, id) < (%s, %s)" if after_values else ""),
            columns=SQL(_P_COLUMNS),
        )
        cursor = self.conn.cursor(row_factory=dict_row)
        await cursor.execute(statement, [*params, *after_values, self.limit + 1])
        return await cursor.fetchall()

    async def _first_page(self, tsquery: str) -> _Found:
        """The first page with the total and every facet, in one scan of the
        candidates: their sort keys and facet columns are materialised once (``m``),
        the page is the best ``limit + 1`` of them joined back to their rows, the
        facets count all of them."""
        relevance = self.sort == "relevance"
        candidates, params = self._candidates(tsquery, rank=relevance)
        keyset = KEYSETS[self.sort]
        direction = " DESC" if keyset.descending else ""
        inner = ", ".join(c + direction for c in keyset.columns)
        outer = ", ".join(("t." if c == "rank" else "p.") + c + direction for c in keyset.columns)
        statement = SQL(
            "WITH m AS MATERIALIZED ({candidates}), "
            "t AS (SELECT id, rank FROM m ORDER BY {inner} LIMIT %s), "
            "f AS ({facets}) "
            "SELECT {columns}, t.rank, f.counts, f.categories, f.prices "
            "FROM f LEFT JOIN (t JOIN read.catalog_products p ON p.id = t.id) ON true "
            "ORDER BY {outer}"
        ).format(
            candidates=candidates,
            inner=SQL(inner),
            facets=_FACETS,
            columns=SQL(_P_COLUMNS),
            outer=SQL(outer),
        )
        cursor = self.conn.cursor(row_factory=dict_row)
        await cursor.execute(
            statement,
            [*params, self.limit + 1, MAX_CATEGORY_FACETS, list(PRICE_EDGES)],
        )
        rows = await cursor.fetchall()
        first = rows[0]  # the facets' row is there even when nothing matches
        counts, categories, prices = first["counts"], first["categories"], first["prices"]
        page = [
            {k: v for k, v in r.items() if k not in ("counts", "categories", "prices")}
            for r in rows
            if r["id"] is not None
        ]
        by_bucket: dict[str, dict[int, int]] = {}
        for bucket in prices:
            by_bucket.setdefault(bucket["currency"], {})[int(bucket["bucket"])] = int(
                bucket["count"]
            )
        total = int(counts["total"])
        return _Found(
            page,
            total,
            {
                "categories": [
                    {"id": UUID(c["id"]), "name": c["name"], "count": int(c["count"])}
                    for c in categories
                ],
                "price": [price_buckets(currency, n) for currency, n in sorted(by_bucket.items())],
                "rating": [
                    {"min": stars, "count": int(counts[f"r{stars}"])} for stars in RATING_BUCKETS
                ],
            },
            exhaustive=total < self.candidates,
        )


_P_COLUMNS = ", ".join(f"p.{c.strip()}" for c in LIST_COLUMNS.split(","))


def _no_facets() -> dict[str, Any]:
    return {
        "categories": [],
        "price": [],
        "rating": [{"min": stars, "count": 0} for stars in RATING_BUCKETS],
    }

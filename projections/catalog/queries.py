"""Queries over the catalog read models (``read.catalog_*``, ``read.inventory_levels``,
``read.product_reviews``), as the read API asks them.

Every list is keyset-paginated (an opaque cursor holds the sort key of the last row
and its id as tiebreaker), never OFFSET: a deep page costs what the first does.

Search (the PostgreSQL adapter of catalog search):

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
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.sql import SQL, Composed
from psycopg.types.json import Jsonb

from projections.catalog.product_cache import CACHED_VIEW, ProductSnapshot
from projections.cursors import BadCursor, decode_cursor, encode_cursor, fetch_page

Sort = Literal["price_asc", "price_desc", "newest", "rating", "relevance"]
SORTS: tuple[str, ...] = ("price_asc", "price_desc", "newest", "rating", "relevance")

MAX_TERMS = 8
MAX_TERM_LENGTH = 64
PRICE_EDGES: tuple[Decimal, ...] = tuple(
    Decimal(e) for e in ("0", "10", "25", "50", "100", "250", "500", "1000")
)
"""Price bucket lower bounds, in major units of each currency; the last is open."""
RATING_BUCKETS: tuple[int, ...] = (4, 3, 2, 1)
"""Minimum-rating facet: products rated at least this (average of visible reviews)."""
MAX_CATEGORY_FACETS = 50
TYPO_SIMILARITY = 0.4
"""pg_trgm similarity a catalog word needs to stand in for a misspelt search word."""
MIN_CORRECTED_TERM = 3
SEARCH_CANDIDATES = 2_000
"""How many matches a search ranks by relevance and counts for its total and facets
(``SHOP_SEARCH_CANDIDATES``): every match of most searches, the first 2,000 of a
common word's (a colour matches ~90,000 of a million products). Beyond it the work of
a search no longer grows with its matches; OpenSearch likewise stops counting hits
exactly past a bound (``track_total_hits``, 10,000) and pages no deeper than
``max_result_window``. 2,000: the bound at which the benchmark's mix holds p95 < 50 ms
at 100 searches/s on 2 cores (bench/README.md)."""

_WORD = re.compile(r"[^\W_]+")


class BadSearch(ValueError):
    """Search text with nothing searchable in it."""


@dataclass(frozen=True)
class ProductFilter:
    category_id: UUID | None = None
    """Products in this category or any category below it."""
    currency: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_rating: Decimal | None = None
    in_stock: bool | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    """Each attribute must equal the value given."""


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


# --- the sorts -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Keyset:
    columns: list[str]
    """Sort key expressions, the last one the unique tiebreaker."""
    types: list[type]
    descending: bool


_KEYSETS: dict[str, _Keyset] = {
    "price_asc": _Keyset(["price_amount", "id"], [Decimal, UUID], descending=False),
    "price_desc": _Keyset(["price_amount", "id"], [Decimal, UUID], descending=True),
    "newest": _Keyset(["created_at", "id"], [datetime, UUID], descending=True),
    "rating": _Keyset(["rating_avg", "rating_count", "id"], [Decimal, int, UUID], descending=True),
    "relevance": _Keyset(["rank", "id"], [float, UUID], descending=True),
}

LIST_COLUMNS = (
    "id, seller_id, sku, name, attributes, images, price_amount, currency, status, "
    "category_ids, created_at, updated_at, available, rating_count, rating_avg"
)
DETAIL_COLUMNS = (
    "id, seller_id, sku, name, description, attributes, images, price_amount, currency, "
    "status, category_ids, created_at, updated_at, on_hand, reserved, available, "
    "rating_count, rating_sum, rating_avg, rating_histogram"
)


def _where(where: ProductFilter, *, matches: bool = False) -> tuple[list[str], list[Any]]:
    """The filters as SQL over published products: over ``catalog_products``, or over
    ``catalog_products_matches`` (``matches``), which holds only published products and
    their stock as ``in_stock``."""
    clauses = [] if matches else ["status = 'published'"]
    params: list[Any] = []
    if where.category_id is not None:
        clauses.append("category_path @> ARRAY[%s]::uuid[]")
        params.append(where.category_id)
    if where.currency is not None:
        clauses.append("currency = %s")
        params.append(where.currency)
    if where.min_price is not None:
        clauses.append("price_amount >= %s")
        params.append(where.min_price)
    if where.max_price is not None:
        clauses.append("price_amount <= %s")
        params.append(where.max_price)
    if where.min_rating is not None:
        clauses.append("rating_count > 0 AND rating_avg >= %s")
        params.append(where.min_rating)
    if where.in_stock is True:
        clauses.append("in_stock" if matches else "available > 0")
    elif where.in_stock is False:
        clauses.append("NOT in_stock" if matches else "available <= 0")
    if where.attributes:
        clauses.append(
            "id IN (SELECT id FROM read.catalog_products WHERE attributes @> %s)"
            if matches
            else "attributes @> %s"
        )
        params.append(Jsonb(where.attributes))
    return clauses, params


def product_item(row: dict[str, Any]) -> dict[str, Any]:
    """A product as clients see it: money as exact strings, stock and rating summaries."""
    out = {
        k: v
        for k, v in row.items()
        if k
        not in {
            "price_amount",
            "currency",
            "on_hand",
            "reserved",
            "available",
            "rating_count",
            "rating_sum",
            "rating_avg",
            "rating_histogram",
            "rank",
        }
    }
    out["price"] = (
        {"amount": str(row["price_amount"]), "currency": row["currency"]}
        if row.get("price_amount") is not None
        else None
    )
    available = int(row["available"])
    out["stock"] = {"available": max(available, 0), "in_stock": available > 0}
    if "on_hand" in row:
        out["stock"].update(on_hand=row["on_hand"], reserved=row["reserved"])
    count = int(row["rating_count"])
    out["rating"] = {
        "count": count,
        "average": str(row["rating_avg"]) if count else None,
    }
    if "rating_histogram" in row:
        out["rating"]["histogram"] = {
            str(stars): n for stars, n in enumerate(row["rating_histogram"], 1)
        }
    return out


# --- product detail and listing --------------------------------------------------------


async def product_detail(
    conn: AsyncConnection[Any],
    product_id: UUID,
    *,
    viewer_id: UUID | None = None,
    admin: bool = False,
) -> dict[str, Any] | None:
    """A published product; any product for an admin or its own seller. None otherwise
    (unknown and not visible answer the same)."""
    found = await product_snapshot(conn, product_id)
    if found is None or not visible_to(found.status, found.seller_id, viewer_id, admin=admin):
        return None
    return found.document


def visible_to(status: str, seller_id: UUID, viewer_id: UUID | None, *, admin: bool) -> bool:
    """Who sees a product: everyone once published; its seller and admins always."""
    return status == "published" or admin or seller_id == viewer_id


_SNAPSHOT = SQL(
    "SELECT {0}, r.revision, "
    "(SELECT active FROM public.projection_generations WHERE name = %s) AS generation, "
    "(SELECT max(revision) FROM read.catalog_products_revisions) AS head "
    "FROM read.catalog_products p JOIN read.catalog_products_revisions r "
    "ON r.product_id = p.id WHERE p.id = %s"
).format(SQL(DETAIL_COLUMNS))


async def product_snapshot(conn: AsyncConnection[Any], product_id: UUID) -> ProductSnapshot | None:
    """A product whoever asks, with its revision, the generation it was read from
    and that generation's last revision, all from one statement (one snapshot): what
    the product cache needs to store it safely."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(_SNAPSHOT, (CACHED_VIEW, product_id), prepare=True)
    row = await cursor.fetchone()
    if row is None:
        return None
    revision, generation, head = row.pop("revision"), row.pop("generation"), row.pop("head")
    return ProductSnapshot(
        document=product_item(row),
        status=row["status"],
        seller_id=row["seller_id"],
        revision=int(revision),
        generation=int(generation),
        head=int(head),
    )


async def list_products(
    conn: AsyncConnection[Any],
    where: ProductFilter,
    sort: str = "newest",
    after: str | None = None,
    limit: int = 24,
) -> Page:
    """Published products matching ``where``, in ``sort`` order (not ``relevance``:
    that needs search text)."""
    if sort not in _KEYSETS or sort == "relevance":
        raise BadCursor(f"unknown sort {sort!r} for a listing")
    clauses, params = _where(where)
    rows = await _page(conn, clauses, params, sort, "list", after, limit)
    return _paged(rows, sort, "list", limit)


async def _page(
    conn: AsyncConnection[Any],
    clauses: list[str],
    params: list[Any],
    sort: str,
    mode: str,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A page of published products in a sort other than relevance, walking its index."""
    keyset = _KEYSETS[sort]
    clauses = list(clauses)
    params = list(params)
    if after is not None:
        values = decode_cursor(after, f"{sort}:{mode}", keyset.types)
        comparison = "<" if keyset.descending else ">"
        clauses.append(
            f"({', '.join(keyset.columns)}) {comparison} ({', '.join(['%s'] * len(values))})"
        )
        params.extend(values)
    direction = " DESC" if keyset.descending else ""
    statement = SQL(
        "SELECT {columns} FROM read.catalog_products WHERE {where} ORDER BY {order} LIMIT %s"
    ).format(
        columns=SQL(LIST_COLUMNS),
        where=SQL(" AND ".join(clauses)),
        order=SQL(", ".join(c + direction for c in keyset.columns)),
    )
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(statement, [*params, limit + 1])
    return await cursor.fetchall()


def _paged(rows: list[dict[str, Any]], sort: str, mode: str, limit: int) -> Page:
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        keys = _KEYSETS[sort].columns
        next_cursor = encode_cursor(f"{sort}:{mode}", [_cursor_value(last[k]) for k in keys])
    return Page([product_item(r) for r in rows], next_cursor)


def _cursor_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


# --- search ----------------------------------------------------------------------------


def search_terms(text: str) -> list[str]:
    """The words of a search: letters and digits only, lower-cased, at most
    ``MAX_TERMS`` (longer words are cut to ``MAX_TERM_LENGTH``)."""
    words = [w.lower()[:MAX_TERM_LENGTH] for w in _WORD.findall(text)]
    unique = list(dict.fromkeys(words))[:MAX_TERMS]
    if not unique:
        raise BadSearch("the search has no words to look for")
    return unique


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


@dataclass(frozen=True)
class SearchResult:
    items: list[dict[str, Any]]
    next_cursor: str | None
    mode: str
    """``exact`` (every word matched, as a prefix) or ``fuzzy`` (typo tolerance)."""
    total: int | None
    facets: dict[str, Any] | None
    exhaustive: bool = True
    """Whether ``total`` and ``facets`` count every match. False: more products
    match than the engine counts, ``total`` is a lower bound and the facets count
    that many of the matches (each count a lower bound too)."""


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
    if sort not in _KEYSETS:
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
        page = _paged(found.rows, sort, mode, limit)
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
            if found is not None and found[0] != term and _WORD.fullmatch(found[0]):
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
        clauses, params = _where(self.where, matches=True)
        statement = SQL(_CANDIDATES).format(
            rank=SQL(_RANK if rank else "0::float8"),
            where=SQL(" AND ".join(["terms @@ to_tsquery('simple', %s)", *clauses])),
        )
        return statement, [*([tsquery] if rank else []), tsquery, *params, self.candidates]

    async def _sorted(self, tsquery: str, mode: str, after: str | None) -> list[dict[str, Any]]:
        clauses, params = _where(self.where)
        return await _page(
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
        keyset = _KEYSETS["relevance"]
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
        keyset = _KEYSETS[self.sort]
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


def price_buckets(currency: str, counts: dict[int, int]) -> dict[str, Any]:
    return {
        "currency": currency,
        "buckets": [
            {
                "min": str(low),
                "max": str(PRICE_EDGES[i + 1]) if i + 1 < len(PRICE_EDGES) else None,
                "count": counts.get(i + 1, 0),
            }
            for i, low in enumerate(PRICE_EDGES)
        ],
    }


def _no_facets() -> dict[str, Any]:
    return {
        "categories": [],
        "price": [],
        "rating": [{"min": stars, "count": 0} for stars in RATING_BUCKETS],
    }


# --- categories ------------------------------------------------------------------------


async def category_names(conn: AsyncConnection[Any], ids: list[UUID]) -> dict[UUID, str]:
    """The names of these categories (unknown ids are left out): facets from a search
    engine that counts category ids name them from here."""
    cursor = await conn.execute(
        "SELECT id, name FROM read.catalog_categories WHERE id = ANY(%s)", (ids,)
    )
    return {row[0]: row[1] for row in await cursor.fetchall()}


async def category_tree(
    conn: AsyncConnection[Any], *, include_archived: bool = False
) -> list[dict[str, Any]]:
    """The category forest: top-level categories with their ``children``, by name."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT id, name, parent_id, path, archived FROM read.catalog_categories "
        "WHERE %s OR NOT archived ORDER BY lower(name), id",
        (include_archived,),
    )
    rows = await cursor.fetchall()
    nodes = {
        r["id"]: {
            "id": r["id"],
            "name": r["name"],
            "parent_id": r["parent_id"],
            "path": r["path"],
            "archived": r["archived"],
            "children": [],
        }
        for r in rows
    }
    roots: list[dict[str, Any]] = []
    for r in rows:
        parent = nodes.get(r["parent_id"]) if r["parent_id"] is not None else None
        (parent["children"] if parent is not None else roots).append(nodes[r["id"]])
    return roots


# --- inventory -------------------------------------------------------------------------


async def inventory_levels(
    conn: AsyncConnection[Any],
    seller_id: UUID | None,
    *,
    low_only: bool = False,
    after: str | None = None,
    limit: int = 50,
) -> Page:
    """Stock per SKU, by SKU: a seller's (``seller_id``) or every SKU's (None: admins)."""
    clauses: list[str] = []
    params: list[Any] = []
    if seller_id is not None:
        clauses.append("seller_id = %s")
        params.append(seller_id)
    if low_only:
        clauses.append("low_stock_threshold IS NOT NULL AND available <= low_stock_threshold")
    if after is not None:
        clauses.append("sku > %s")
        params.extend(decode_cursor(after, "sku", [str]))
    statement = SQL(
        "SELECT sku, product_id, seller_id, product_name, on_hand, reserved, available, "
        "low_stock_threshold, low_since, updated_at FROM read.inventory_levels {0} "
        "ORDER BY sku LIMIT %s"
    ).format(SQL("WHERE " + " AND ".join(clauses) if clauses else ""))
    rows, next_cursor = await fetch_page(
        conn, statement, params, limit=limit, kind="sku", keys=("sku",)
    )
    for row in rows:
        threshold = row["low_stock_threshold"]
        row["low_stock"] = threshold is not None and row["available"] <= threshold
    return Page(rows, next_cursor)


# --- reviews ---------------------------------------------------------------------------


async def product_reviews(
    conn: AsyncConnection[Any],
    product_id: UUID,
    *,
    include_hidden: bool = False,
    after: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """A product's reviews, newest first, with the histogram of visible ratings
    (the summary with the first page only)."""
    clauses = ["product_id = %s"]
    params: list[Any] = [product_id]
    if not include_hidden:
        clauses.append("NOT hidden")
    if after is not None:
        clauses.append("(created_at, review_id) < (%s, %s)")
        params.extend(decode_cursor(after, "reviews", [datetime, UUID]))
    columns = (
        "review_id, product_id, author_id, rating, title, body, verified_purchase, reply, "
        "replied_at, created_at, updated_at" + (", hidden, hidden_reason" if include_hidden else "")
    )
    statement = SQL(
        "SELECT {0} FROM read.product_reviews WHERE {1} "
        "ORDER BY created_at DESC, review_id DESC LIMIT %s"
    ).format(SQL(columns), SQL(" AND ".join(clauses)))
    rows, next_cursor = await fetch_page(
        conn, statement, params, limit=limit, kind="reviews", keys=("created_at", "review_id")
    )
    summary = None
    if after is None:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(
            "SELECT rating_count, rating_sum, histogram FROM read.product_rating_summaries "
            "WHERE product_id = %s",
            (product_id,),
        )
        found = await cursor.fetchone()
        count = int(found["rating_count"]) if found else 0
        histogram = list(found["histogram"]) if found else [0, 0, 0, 0, 0]
        summary = {
            "count": count,
            "average": (
                str((Decimal(found["rating_sum"]) / count).quantize(Decimal("0.01"), ROUND_HALF_UP))
                if found and count
                else None
            ),
            "histogram": {str(stars): n for stars, n in enumerate(histogram, 1)},
        }
    return {"items": rows, "next_cursor": next_cursor, "summary": summary}


__all__ = [
    "SORTS",
    "BadCursor",
    "BadSearch",
    "Page",
    "ProductFilter",
    "SearchResult",
    "category_names",
    "category_tree",
    "inventory_levels",
    "list_products",
    "price_buckets",
    "product_detail",
    "product_item",
    "product_reviews",
    "search_products",
]

"""The OpenSearch index of the catalog: its mapping, a product row as a document
(and back), and the indexer that keeps the index current.

The indexer follows the change feed of ``catalog_products`` (``projections.
product_feed``: every row change takes the next revision of its generation, in
commit order), never the event logs: the view is the one place where events become
products. Each document is written with ``version=revision`` and external
versioning, so OpenSearch itself refuses (409) an older or repeated write of a
product, and a pass that is retried, or two indexers that overlap, change nothing.

Searches read an alias (``products``) over a concrete index
(``products_g<generation>_<n>``). When the served generation of ``catalog_products``
changes (a rebuild swapped one in), or the alias no longer points at the index the
indexer writes (OpenSearch lost it), the indexer fills a new index from revision 0
while the alias keeps serving the old one, swaps the alias in one request, and drops
the old indices. Its position (index, generation, revision) is a row of
``public.search_index_positions``, so a restart resumes where it was.

Prices and ratings are indexed as integers (thousandths of a major unit,
hundredths of a star): exact filters, sorts and ``search_after`` values, where
floats would round.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import NotFoundError
from psycopg import AsyncConnection, Connection
from psycopg_pool import ConnectionPool

from projections.catalog.product_feed import changed_products, head_revision
from projections.catalog.product_items import LIST_COLUMNS
from projections.catalog.search import MAX_TERM_LENGTH
from projections.engine import generation_schema
from projections.generations import active_generations
from projections.positions import ProjectionStatus
from streams.supervision import Supervised, failing

log = logging.getLogger(__name__)

VIEW = "catalog_products"
PRICE_SCALE = 1000
"""Prices in thousandths of a major unit: exact for every currency (3 minor digits at most)."""
RATING_SCALE = 100
"""Rating averages in hundredths (the view keeps two decimals)."""
BULK_TIMEOUT = 120.0
"""Seconds one bulk request of ``batch_size`` documents may take: generous, for
osmem-server, the test server, which is slow at bulk requests
(bench/README.md#search-index-benchsearch_index); a cluster is much faster."""

_WORDS: dict[str, Any] = {
    "type": "text",
    "analyzer": "words",
    # Every prefix of every word (up to the longest search word), so a prefix
    # search is one term lookup; the search text itself is split into whole words.
    "fields": {"prefix": {"type": "text", "analyzer": "prefixes", "search_analyzer": "words"}},
}

MAPPING: dict[str, Any] = {
    "settings": {
        # One shard: exact facet counts (terms aggregations count per shard) and
        # search_after over one consistent order; a catalog of millions fits.
        "number_of_shards": 1,
        "analysis": {
            "filter": {
                "prefixes": {"type": "edge_ngram", "min_gram": 1, "max_gram": MAX_TERM_LENGTH}
            },
            "analyzer": {
                # Like Postgres' ``simple`` configuration: words, lower-cased, no stemming.
                "words": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase"]},
                "prefixes": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": ["lowercase", "prefixes"],
                },
            },
        },
    },
    "mappings": {
        "dynamic": "strict",
        "properties": {
            "id": {"type": "keyword"},
            "status": {"type": "keyword"},
            "name": _WORDS,
            "sku": _WORDS,
            "attribute_values": _WORDS,
            "description": _WORDS,
            "currency": {"type": "keyword"},
            "price": {"type": "long"},
            "rating": {"type": "integer"},
            "rating_count": {"type": "integer"},
            "in_stock": {"type": "boolean"},
            "category_path": {"type": "keyword"},
            "attributes": {"type": "keyword"},
            "created": {"type": "long"},
            # What a search answers with: the listing row, stored, not indexed.
            "row": {"type": "object", "enabled": False},
        },
    },
}

_ROW_COLUMNS = [column.strip() for column in LIST_COLUMNS.split(",")]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def scaled(value: Decimal, scale: int) -> int:
    return int(value * scale)


def attribute_term(name: str, value: str) -> str:
    """``color=red``: attribute names never hold ``=`` (``domain.catalog``)."""
    return f"{name}={value}"


def document(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the change feed as the document to index."""
    attributes: dict[str, str] = row["attributes"]
    price: Decimal | None = row["price_amount"]
    return {
        "id": str(row["id"]),
        "status": row["status"],
        "name": row["name"],
        "sku": row["sku"],
        "attribute_values": list(attributes.values()),
        "description": row["description"],
        "currency": row["currency"],
        "price": None if price is None else scaled(price, PRICE_SCALE),
        "rating": scaled(row["rating_avg"], RATING_SCALE),
        "rating_count": row["rating_count"],
        "in_stock": row["available"] > 0,
        "category_path": [str(c) for c in row["category_path"]],
        "attributes": [attribute_term(k, v) for k, v in attributes.items()],
        "created": (row["created_at"] - _EPOCH) // timedelta(microseconds=1),
        "row": {column: _json(row[column]) for column in _ROW_COLUMNS},
    }


def _json(value: Any) -> Any:
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def listing_row(stored: dict[str, Any]) -> dict[str, Any]:
    """A document's stored ``row`` with its types back, as Postgres returns it."""
    row = dict(stored)
    row["id"], row["seller_id"] = UUID(row["id"]), UUID(row["seller_id"])
    row["category_ids"] = [UUID(c) for c in row["category_ids"]]
    for column in ("price_amount", "rating_avg"):
        row[column] = None if row[column] is None else Decimal(row[column])
    for column in ("created_at", "updated_at"):
        row[column] = datetime.fromisoformat(row[column])
    return row


# --- the position --------------------------------------------------------------------

DDL = """
CREATE TABLE IF NOT EXISTS public.search_index_positions (
    alias text PRIMARY KEY,
    index_name text NOT NULL,
    generation integer NOT NULL,
    revision bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class IndexPosition:
    index: str
    generation: int
    """The generation of ``catalog_products`` the index holds."""
    revision: int
    """Every change of that generation up to this revision is searchable."""


def load_position(conn: Connection[Any], alias: str) -> IndexPosition | None:
    row = conn.execute(
        "SELECT index_name, generation, revision FROM public.search_index_positions "
        "WHERE alias = %s",
        (alias,),
    ).fetchone()
    return IndexPosition(str(row[0]), int(row[1]), int(row[2])) if row else None


def _save_position(conn: Connection[Any], alias: str, position: IndexPosition) -> None:
    conn.execute(
        "INSERT INTO public.search_index_positions (alias, index_name, generation, revision) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (alias) DO UPDATE SET "
        "index_name = EXCLUDED.index_name, generation = EXCLUDED.generation, "
        "revision = EXCLUDED.revision, updated_at = now()",
        (alias, position.index, position.generation, position.revision),
    )


async def feed_head(conn: AsyncConnection[Any]) -> tuple[int | None, int]:
    """The served generation of ``catalog_products`` and its last revision."""
    cursor = await conn.execute(
        "SELECT (SELECT active FROM public.projection_generations WHERE name = %s), "
        "(SELECT coalesce(max(revision), 0) FROM read.catalog_products_revisions)",
        (VIEW,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return (None if row[0] is None else int(row[0])), int(row[1])


async def indexed_through(
    conn: AsyncConnection[Any], alias: str, generation: int | None, revision: int
) -> bool:
    """Whether the index behind ``alias`` holds ``generation`` up to ``revision``."""
    cursor = await conn.execute(
        "SELECT generation, revision FROM public.search_index_positions WHERE alias = %s",
        (alias,),
    )
    row = await cursor.fetchone()
    return row is not None and row[0] == generation and int(row[1]) >= revision


# --- the indexer ---------------------------------------------------------------------


class _Stopped(Exception):
    """The indexer was asked to stop in the middle of a pass (a long rebuild)."""


class ProductIndexer:
    """Keeps the index behind ``alias`` current with the served generation of
    ``catalog_products``: ``sync`` is one pass, ``start`` runs passes in a thread.

    One pass is one Postgres transaction holding an advisory lock per alias, so
    processes that each run an indexer take turns (never two rebuilds at once), and
    the position commits only after its documents are searchable."""

    def __init__(
        self,
        client: OpenSearch,
        pool: ConnectionPool[Connection[Any]],
        alias: str = "products",
        *,
        batch_size: int = 500,
        poll_interval: float = 0.1,
    ) -> None:
        self.client = client
        self.alias = alias
        self._pool = pool
        self._batch_size = batch_size
        # OpenSearch or Postgres unreachable, or a document refused: kept for
        # /health and retried with backoff (nothing is lost: the position did not move).
        self._loop = Supervised("search_index", self._step, poll_interval)

    # --- one pass ---------------------------------------------------------------------

    def sync(self) -> int:
        """Index what changed since the last pass (or rebuild, when needed); returns
        how many documents were written."""
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext(%s))", (f"search_index:{self.alias}",)
            ).fetchone()
            if row is None or not row[0]:
                return 0  # another process's indexer is at it
            generation = active_generations(conn).get(VIEW)
            if generation is None:
                return 0  # no catalog yet
            schema = generation_schema(VIEW, generation)
            position = load_position(conn, self.alias)
            if position is None or position.generation != generation or not self._serves(position):
                position, written = self._rebuild(conn, schema, generation, position)
            else:
                # One batch per pass: the position commits batch by batch, so
                # read-your-writes waiters see progress under a steady stream of writes.
                rows = changed_products(conn, schema, position.revision, self._batch_size)
                if not rows:
                    return 0
                self.index_rows(position.index, rows)
                written = len(rows)
                position = IndexPosition(position.index, generation, int(rows[-1]["revision"]))
            _save_position(conn, self.alias, position)
            return written

    def _serves(self, position: IndexPosition) -> bool:
        return bool(self.client.indices.exists_alias(name=self.alias, index=position.index))

    def _fill(self, conn: Connection[Any], schema: str, index: str) -> tuple[int, int]:
        """Index every row of the generation ``schema`` (changes committed meanwhile
        included); returns the revision reached and how many documents were written."""
        after = written = 0
        while rows := changed_products(conn, schema, after, self._batch_size):
            if self._loop.stopping:
                raise _Stopped  # the pass rolls back; the alias never saw this index
            self.index_rows(index, rows, refresh=False)
            after = int(rows[-1]["revision"])
            written += len(rows)
        return after, written

    def index_rows(self, index: str, rows: list[dict[str, Any]], *, refresh: bool = True) -> None:
        """Write feed rows as documents, each versioned by its revision. A refusal
        other than 409 (the index holds this revision of the product or a newer
        one: nothing to do) raises ``BulkIndexError``."""
        actions = [
            {
                "_index": index,
                "_id": str(row["id"]),
                "version": row["revision"],
                "version_type": "external",
                "_source": document(row),
            }
            for row in rows
        ]
        helpers.bulk(
            self.client,
            actions,
            ignore_status=(409,),
            refresh=refresh,
            request_timeout=BULK_TIMEOUT,
        )

    def _rebuild(
        self, conn: Connection[Any], schema: str, generation: int, old: IndexPosition | None
    ) -> tuple[IndexPosition, int]:
        index = self._create_index(generation, old)
        log.info("search index: building %s from %s", index, schema)
        revision, written = self._fill(conn, schema, index)
        self.client.indices.refresh(index=index)
        actions: list[dict[str, Any]] = [
            {"remove": {"index": name, "alias": self.alias}}
            for name in self._indices(name=self.alias)
        ]
        actions.append({"add": {"index": index, "alias": self.alias}})
        self.client.indices.update_aliases(body={"actions": actions})
        for name in self._indices(index=f"{self.alias}_g*"):
            if name != index:
                self.client.indices.delete(index=name)
        log.info("search index: %s serves %s (%d documents)", self.alias, index, written)
        return IndexPosition(index, generation, revision), written

    def _create_index(self, generation: int, old: IndexPosition | None) -> str:
        """A fresh ``<alias>_g<generation>_<n>``. A leftover of a rebuild that did not
        finish (the alias not on it) is dropped and its name reused."""
        n = int(old.index.rsplit("_", 1)[1]) + 1 if old and old.generation == generation else 1
        while True:
            name = f"{self.alias}_g{generation}_{n}"
            if not self.client.indices.exists(index=name):
                break
            if not self.client.indices.exists_alias(name=self.alias, index=name):
                self.client.indices.delete(index=name)
                break
            n += 1
        self.client.indices.create(index=name, body=MAPPING)
        return name

    def _indices(self, **which: str) -> list[str]:
        """The indices an alias (``name=``) points at, or that match ``index=``."""
        try:
            return list(self.client.indices.get_alias(**which))
        except NotFoundError:
            return []

    # --- the thread -------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def errors(self) -> dict[str, str]:
        """The indexer's last failure while it lasts: its part of what ``/health``
        reads from the process's list of loops."""
        return failing([self._loop.state()])

    def _step(self) -> bool:
        try:
            return not self.sync()
        except _Stopped:
            return True

    # --- status -----------------------------------------------------------------------

    def status(self, conn: Connection[Any]) -> ProjectionStatus:
        """Position and lag, in revisions of the served ``catalog_products``."""
        generation = active_generations(conn).get(VIEW)
        head = head_revision(conn, generation_schema(VIEW, generation)) if generation else 0
        position = load_position(conn, self.alias)
        reached = position.revision if position and position.generation == generation else 0
        generation_held = position.generation if position else None
        return ProjectionStatus(f"search:{self.alias}", VIEW, generation_held, reached, head)

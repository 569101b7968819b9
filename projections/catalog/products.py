"""The ``catalog_products`` view: products as shoppers browse and search them.

``catalog_products`` follows the catalog, inventory and reviews logs. One row per
product, with its stock (joined by SKU) and rating summary denormalised into it so
that listing filters and sorts run on one indexed table. The logs are delivered
independently (one runner per log; a rebuild replays them one after another), so
nothing here assumes an order between logs: stock and reviews are kept in side
tables of this view, and a product row takes its stock and ratings from them when
it is created, while stock and review events update the side tables and then the
product row if it exists. Any interleaving gives the same rows.

Search: ``catalog_products.search`` is a tsvector over the ``simple`` configuration
(no stemming, no stop words: product names, brands and attribute values are not
English prose, and prefix queries on stems go wrong), name and SKU weighted A,
attribute values B, description C, kept by a trigger (``projections.catalog.triggers``,
with the change feed's revisions). Searches scan a narrow copy of the published
products (``catalog_products_matches``, kept by triggers; ADR 13). Typo tolerance
corrects search words against ``catalog_products_words`` (the words of names and
attribute values) through a pg_trgm index, when the extension can be created; without
it, search is prefix matching only.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal
from psycopg.types.json import Jsonb

from domain.catalog import Product
from domain.categories import Category
from domain.inventory import stock_item_id
from domain.reviews import Review
from projections.catalog.shared_tables import (
    CATEGORY_COLUMNS,
    HISTOGRAM,
    RESERVATION_COLUMNS,
    apply_category,
    apply_stock,
)
from projections.catalog.triggers import MATCHES_DDL, REVISION_DDL, SEARCH_DDL, TRIGRAM_DDL
from projections.engine import View, ViewDatastore, ViewProjection

PUBLISHED = "published"


def _price(price: dict[str, str] | None) -> tuple[str | None, str | None]:
    if price is None:
        return None, None
    return price["amount"], price["currency"]


class CatalogProductsView(View):
    name = "catalog_products"
    follows = ("catalog", "inventory", "reviews")
    serialised = True  # its revisions commit in order (see catalog_triggers)
    tables = {
        "catalog_products": """
            id uuid PRIMARY KEY,
            seller_id uuid NOT NULL,
            sku text NOT NULL,
            stock_item_id uuid NOT NULL,
            name text NOT NULL,
            description text NOT NULL,
            attributes jsonb NOT NULL,
            images text[] NOT NULL,
            price_amount numeric,
            currency text,
            status text NOT NULL,
            category_ids uuid[] NOT NULL,
            category_path uuid[] NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            on_hand integer NOT NULL,
            reserved integer NOT NULL,
            available integer GENERATED ALWAYS AS (on_hand - reserved) STORED,
            rating_count integer NOT NULL,
            rating_sum integer NOT NULL,
            rating_avg numeric(3, 2) NOT NULL,
            rating_histogram integer[] NOT NULL,
            search tsvector NOT NULL
        """,
        # The change feed: each product's last revision (see catalog_triggers).
        "catalog_products_revisions": """
            product_id uuid PRIMARY KEY,
            revision bigint NOT NULL
        """,
        # Side tables: what the product rows are derived from, whatever the order in
        # which the three logs arrive.
        "catalog_products_categories": CATEGORY_COLUMNS,
        "catalog_products_stock": """
            item_id uuid PRIMARY KEY,
            sku text NOT NULL,
            on_hand integer NOT NULL,
            reserved integer NOT NULL,
            updated_at timestamptz
        """,
        "catalog_products_reservations": RESERVATION_COLUMNS,
        "catalog_products_rating_totals": """
            product_id uuid PRIMARY KEY,
            rating_count integer NOT NULL,
            rating_sum integer NOT NULL,
            rating_histogram integer[] NOT NULL
        """,
        # What a search scans of each published product: the copy that the trigger
        # keeps (see catalog_triggers.MATCHES_DDL), a few hundred bytes a row.
        "catalog_products_matches": """
            id uuid PRIMARY KEY,
            terms tsvector NOT NULL,
            rank_terms tsvector NOT NULL,
            price_amount numeric,
            currency text,
            rating_count integer NOT NULL,
            rating_avg numeric(3, 2) NOT NULL,
            in_stock boolean NOT NULL,
            created_at timestamptz NOT NULL,
            category_path uuid[] NOT NULL
        """,
        # The vocabulary typo tolerance corrects search words against: every word
        # of every product name and attribute value (never removed: a stale word
        # only makes a correction that finds nothing).
        "catalog_products_words": "word text PRIMARY KEY",
        "catalog_products_ratings": """
            review_id uuid PRIMARY KEY,
            product_id uuid NOT NULL,
            rating smallint NOT NULL,
            hidden boolean NOT NULL
        """,
    }
    # Room in each page for the new version of a row whose stock changes: an update
    # that changes no indexed column and fits in its page adds no index entry (HOT).
    table_options = {
        "catalog_products": "WITH (fillfactor = 80)",
        "catalog_products_matches": "WITH (fillfactor = 90)",
    }
    _published = f"WHERE status = '{PUBLISHED}'"
    indexes = [
        # The change feed (see catalog_triggers.REVISION_DDL).
        "CREATE INDEX IF NOT EXISTS catalog_products_by_revision ON "
        "{schema}.catalog_products_revisions (revision)",
        "CREATE INDEX IF NOT EXISTS catalog_products_stock_item ON {schema}.catalog_products "
        "(stock_item_id)",
        "CREATE INDEX IF NOT EXISTS catalog_products_seller ON {schema}.catalog_products "
        "(seller_id, created_at, id)",
        # Keyset sorts of published products (scanned backwards for descending).
        "CREATE INDEX IF NOT EXISTS catalog_products_by_price ON {schema}.catalog_products "
        f"(price_amount, id) {_published}",
        "CREATE INDEX IF NOT EXISTS catalog_products_by_created ON {schema}.catalog_products "
        f"(created_at, id) {_published}",
        "CREATE INDEX IF NOT EXISTS catalog_products_by_rating ON {schema}.catalog_products "
        f"(rating_avg, rating_count, id) {_published}",
        # Filters and search.
        "CREATE INDEX IF NOT EXISTS catalog_products_search ON {schema}.catalog_products "
        f"USING gin (search) {_published}",
        "CREATE INDEX IF NOT EXISTS catalog_products_matches_terms ON "
        "{schema}.catalog_products_matches USING gin (terms)",
        "CREATE INDEX IF NOT EXISTS catalog_products_categories_gin ON {schema}.catalog_products "
        f"USING gin (category_path) {_published}",
        "CREATE INDEX IF NOT EXISTS catalog_products_attributes ON {schema}.catalog_products "
        f"USING gin (attributes jsonb_path_ops) {_published}",
        "CREATE INDEX IF NOT EXISTS catalog_products_categories_path ON "
        "{schema}.catalog_products_categories USING gin (path)",
        "CREATE INDEX IF NOT EXISTS catalog_products_ratings_product ON "
        "{schema}.catalog_products_ratings (product_id)",
    ]

    def __init__(self, datastore: ViewDatastore) -> None:
        super().__init__(datastore)
        schema = Identifier(datastore.schema)
        self.sql_create_statements += [
            SQL(SEARCH_DDL).format(schema),
            SQL(REVISION_DDL).format(schema),
            SQL(MATCHES_DDL).format(schema),
            SQL(TRIGRAM_DDL).format(Literal(datastore.schema)),
        ]


class CatalogProductsProjection(ViewProjection[CatalogProductsView]):
    name = "catalog_products"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        if apply_category(cursor, event, "catalog_products_categories"):
            if isinstance(event, Category.Moved):
                cursor.execute(
                    SQL(
                        "UPDATE catalog_products SET category_path = ({0}) "
                        "WHERE category_path @> ARRAY[%s]::uuid[]"
                    ).format(_CATEGORY_PATH_OF),
                    (event.originator_id,),
                )
            return
        if apply_stock(cursor, event, "catalog_products_stock", "catalog_products_reservations"):
            # Only a real change: an unchanged row would still take a new revision.
            cursor.execute(
                "UPDATE catalog_products p SET on_hand = s.on_hand, reserved = s.reserved "
                "FROM catalog_products_stock s "
                "WHERE s.item_id = %s AND p.stock_item_id = s.item_id "
                "AND (p.on_hand, p.reserved) IS DISTINCT FROM (s.on_hand, s.reserved)",
                (event.originator_id,),
            )
            return
        match event:
            case Product.Created():
                self._create(cursor, event)
                self._learn_words(cursor, event.name, *event.attributes.values())
            case Product.DetailsUpdated():
                allowed = ("name", "description", "attributes", "images")
                changes = {k: v for k, v in event.changes.items() if k in allowed}
                values = [Jsonb(v) if k == "attributes" else v for k, v in changes.items()]
                assignments = SQL("").join(
                    SQL("{0} = %s, ").format(Identifier(column)) for column in changes
                )
                cursor.execute(
                    SQL("UPDATE catalog_products SET {0}updated_at = %s WHERE id = %s").format(
                        assignments
                    ),
                    (*values, event.timestamp, event.originator_id),
                )
                attributes = changes.get("attributes", {})
                if "name" in changes or attributes:
                    self._learn_words(cursor, changes.get("name", ""), *attributes.values())
            case Product.PriceChanged():
                amount, currency = _price(event.price)
                self._set(cursor, event, "price_amount = %s, currency = %s", amount, currency)
            case Product.Categorised():
                ids = list(event.category_ids)
                cursor.execute(
                    "UPDATE catalog_products SET category_ids = %s, "
                    "category_path = (SELECT coalesce(array_agg(DISTINCT a ORDER BY a), '{}') "
                    "FROM catalog_products_categories c, unnest(c.path) a "
                    "WHERE c.id = ANY(%s)), updated_at = %s WHERE id = %s",
                    (ids, ids, event.timestamp, event.originator_id),
                )
            case Product.Published():
                self._set(cursor, event, "status = %s", "published")
            case Product.Unpublished():
                self._set(cursor, event, "status = %s", "unpublished")
            case Product.Archived():
                self._set(cursor, event, "status = %s", "archived")
            case Review.Written():
                cursor.execute(
                    "INSERT INTO catalog_products_ratings VALUES (%s, %s, %s, false) "
                    "ON CONFLICT (review_id) DO NOTHING",
                    (event.originator_id, event.product_id, event.rating),
                )
                self._rate(cursor, event.product_id)
            case Review.Edited():
                self._review(cursor, event, "rating = %s", event.rating)
            case Review.Hidden():
                self._review(cursor, event, "hidden = %s", True)
            case Review.Unhidden():
                self._review(cursor, event, "hidden = %s", False)

    def _set(self, cursor: Cursor[DictRow], event: Any, assignment: str, *values: Any) -> None:
        cursor.execute(
            SQL("UPDATE catalog_products SET {0}, updated_at = %s WHERE id = %s").format(
                SQL(assignment)
            ),
            (*values, event.timestamp, event.originator_id),
        )

    def _review(self, cursor: Cursor[DictRow], event: Any, assignment: str, value: Any) -> None:
        cursor.execute(
            SQL(
                "UPDATE catalog_products_ratings SET {0} WHERE review_id = %s RETURNING product_id"
            ).format(SQL(assignment)),
            (value, event.originator_id),
        )
        row = cursor.fetchone()
        if row is not None:
            self._rate(cursor, row["product_id"])

    @staticmethod
    def _create(cursor: Cursor[DictRow], event: Product.Created) -> None:
        """The product row, with the stock and ratings seen so far. The live runners
        of the three logs write concurrently: the side rows are created if missing
        and locked (ratings, then stock: the order every writer follows), so a stock
        or review change committed by another runner meanwhile is either seen here
        or, waiting on the lock, sees this row and updates it."""
        amount, currency = _price(event.price)
        keys = {"id": event.originator_id, "item": stock_item_id(event.sku), "sku": event.sku}
        cursor.execute(
            "INSERT INTO catalog_products_rating_totals VALUES (%(id)s, 0, 0, '{0,0,0,0,0}') "
            "ON CONFLICT (product_id) DO NOTHING",
            keys,
        )
        cursor.execute(
            "INSERT INTO catalog_products_stock (item_id, sku, on_hand, reserved) "
            "VALUES (%(item)s, %(sku)s, 0, 0) ON CONFLICT (item_id) DO NOTHING",
            keys,
        )
        cursor.execute(
            "SELECT 1 FROM catalog_products_rating_totals WHERE product_id = %(id)s FOR UPDATE",
            keys,
        )
        cursor.execute(
            "SELECT 1 FROM catalog_products_stock WHERE item_id = %(item)s FOR UPDATE", keys
        )
        cursor.execute(
            SQL(
                "INSERT INTO catalog_products (id, seller_id, sku, stock_item_id, name, "
                "description, attributes, images, price_amount, currency, status, "
                "category_ids, category_path, created_at, updated_at, on_hand, reserved, "
                "rating_count, rating_sum, rating_avg, rating_histogram) "
                "SELECT %(id)s, %(seller)s, %(sku)s, %(item)s, %(name)s, %(description)s, "
                "%(attributes)s, %(images)s, %(amount)s, %(currency)s, 'draft', '{{}}', "
                "'{{}}', %(ts)s, %(ts)s, s.on_hand, s.reserved, t.rating_count, "
                "t.rating_sum, {0}, t.rating_histogram "
                "FROM catalog_products_stock s, catalog_products_rating_totals t "
                "WHERE s.item_id = %(item)s AND t.product_id = %(id)s "
                "ON CONFLICT (id) DO NOTHING"
            ).format(_AVERAGE),
            {
                **keys,
                "seller": event.seller_id,
                "name": event.name,
                "description": event.description,
                "attributes": Jsonb(event.attributes),
                "images": list(event.images),
                "amount": amount,
                "currency": currency,
                "ts": event.timestamp,
            },
        )

    @staticmethod
    def _learn_words(cursor: Cursor[DictRow], *texts: str) -> None:
        cursor.execute(
            "INSERT INTO catalog_products_words SELECT DISTINCT w "
            "FROM unnest(tsvector_to_array(to_tsvector('simple', %s))) w "
            "WHERE length(w) BETWEEN 3 AND 64 ON CONFLICT (word) DO NOTHING",
            (" ".join(texts),),
        )

    @staticmethod
    def _rate(cursor: Cursor[DictRow], product_id: UUID) -> None:
        """Recompute a product's rating summary from its visible reviews (the totals
        row first: see ``_create``)."""
        cursor.execute(
            SQL(
                "INSERT INTO catalog_products_rating_totals "
                "SELECT %(id)s, r.n, r.s, r.h FROM ({0} FROM catalog_products_ratings "
                "WHERE product_id = %(id)s AND NOT hidden) r "
                "ON CONFLICT (product_id) DO UPDATE SET rating_count = EXCLUDED.rating_count, "
                "rating_sum = EXCLUDED.rating_sum, rating_histogram = EXCLUDED.rating_histogram"
            ).format(HISTOGRAM),
            {"id": product_id},
        )
        cursor.execute(
            SQL(
                "UPDATE catalog_products p SET rating_count = t.rating_count, "
                "rating_sum = t.rating_sum, rating_avg = {0}, "
                "rating_histogram = t.rating_histogram FROM catalog_products_rating_totals t "
                "WHERE t.product_id = %(id)s AND p.id = t.product_id"
            ).format(_AVERAGE),
            {"id": product_id},
        )


_AVERAGE = SQL(
    "CASE WHEN t.rating_count = 0 THEN 0 ELSE round(t.rating_sum::numeric / t.rating_count, 2) END"
)

_CATEGORY_PATH_OF = SQL(
    "SELECT coalesce(array_agg(DISTINCT a ORDER BY a), '{}') "
    "FROM catalog_products_categories c, unnest(c.path) a "
    "WHERE c.id = ANY(catalog_products.category_ids)"
)

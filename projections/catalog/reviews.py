"""The ``product_reviews`` view: it follows the reviews log; review rows and a
per-product histogram of visible ratings."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from domain.reviews import Review
from projections.catalog.shared_tables import HISTOGRAM
from projections.engine import View, ViewProjection


class ProductReviewsView(View):
    name = "product_reviews"
    follows = ("reviews",)
    tables = {
        "product_reviews": """
            review_id uuid PRIMARY KEY,
            product_id uuid NOT NULL,
            seller_id uuid NOT NULL,
            author_id uuid NOT NULL,
            rating smallint NOT NULL,
            title text NOT NULL,
            body text NOT NULL,
            verified_purchase boolean NOT NULL,
            hidden boolean NOT NULL,
            hidden_reason text,
            reply text,
            replied_at timestamptz,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        """,
        "product_rating_summaries": """
            product_id uuid PRIMARY KEY,
            rating_count integer NOT NULL,
            rating_sum integer NOT NULL,
            histogram integer[] NOT NULL
        """,
    }
    indexes = [
        "CREATE INDEX IF NOT EXISTS product_reviews_newest ON {schema}.product_reviews "
        "(product_id, created_at, review_id)",
        # An author's reviews (``review_queries.reviews_by_author``: their data export).
        "CREATE INDEX IF NOT EXISTS product_reviews_author ON {schema}.product_reviews "
        "(author_id, created_at, review_id)",
    ]


class ProductReviewsProjection(ViewProjection[ProductReviewsView]):
    name = "product_reviews"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        match event:
            case Review.Written():
                cursor.execute(
                    "INSERT INTO product_reviews VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, false, false, NULL, NULL, NULL, %s, %s) "
                    "ON CONFLICT (review_id) DO NOTHING",
                    (
                        event.originator_id,
                        event.product_id,
                        event.seller_id,
                        event.author_id,
                        event.rating,
                        event.title,
                        event.body,
                        event.timestamp,
                        event.timestamp,
                    ),
                )
                self._summarise(cursor, event.product_id)
            case Review.Edited():
                self._update(
                    cursor,
                    event,
                    "rating = %s, title = %s, body = %s",
                    event.rating,
                    event.title,
                    event.body,
                )
            case Review.SellerReplied():
                self._update(
                    cursor, event, "reply = %s, replied_at = %s", event.body, event.timestamp
                )
            case Review.Hidden():
                self._update(cursor, event, "hidden = true, hidden_reason = %s", event.reason)
            case Review.Unhidden():
                self._update(cursor, event, "hidden = false, hidden_reason = NULL")
            case Review.VerifiedPurchaseMarked():
                self._update(cursor, event, "verified_purchase = true")

    def _update(self, cursor: Cursor[DictRow], event: Any, assignments: str, *values: Any) -> None:
        cursor.execute(
            SQL(
                "UPDATE product_reviews SET {0}, updated_at = %s WHERE review_id = %s "
                "RETURNING product_id"
            ).format(SQL(assignments)),
            (*values, event.timestamp, event.originator_id),
        )
        row = cursor.fetchone()
        if row is not None:
            self._summarise(cursor, row["product_id"])

    @staticmethod
    def _summarise(cursor: Cursor[DictRow], product_id: UUID) -> None:
        cursor.execute(
            SQL(
                "INSERT INTO product_rating_summaries "
                "SELECT %(id)s, r.n, r.s, r.h FROM ({0} FROM product_reviews "
                "WHERE product_id = %(id)s AND NOT hidden) r "
                "ON CONFLICT (product_id) DO UPDATE SET rating_count = EXCLUDED.rating_count, "
                "rating_sum = EXCLUDED.rating_sum, histogram = EXCLUDED.histogram"
            ).format(HISTOGRAM),
            {"id": product_id},
        )

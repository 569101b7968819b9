"""A ``read.catalog_products`` row as clients see it: the columns a listing and a
detail read, and the item made of them. Listings, details and both search adapters
answer these items (the OpenSearch index keeps each product's listing columns)."""

from __future__ import annotations

from typing import Any

LIST_COLUMNS = (
    "id, seller_id, sku, name, attributes, images, price_amount, currency, status, "
    "category_ids, created_at, updated_at, available, rating_count, rating_avg"
)
DETAIL_COLUMNS = (
    "id, seller_id, sku, name, description, attributes, images, price_amount, currency, "
    "status, category_ids, created_at, updated_at, on_hand, reserved, available, "
    "rating_count, rating_sum, rating_avg, rating_histogram"
)


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

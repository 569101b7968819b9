"""Read models of the catalog: products as shoppers browse and search them, the
category tree, inventory levels per SKU, and reviews with their rating histograms.

Four views, each in its own generation schema (see ``projections.engine``):

- ``catalog_products`` (``projections.catalog.products``) follows the catalog,
  inventory and reviews logs: one row per product, its stock and rating summary
  denormalised into it, and what search scans.
- ``catalog_categories`` (``projections.catalog.categories``) follows the catalog log.
- ``inventory_levels`` (``projections.catalog.inventory_levels``) follows the
  inventory and catalog logs.
- ``product_reviews`` (``projections.catalog.reviews``) follows the reviews log.

What two of them share (the category tree, stock, the rating histogram) is in
``projections.catalog.shared_tables``.
"""

from __future__ import annotations

from typing import Any

from projections.catalog.categories import CatalogCategoriesProjection, CatalogCategoriesView
from projections.catalog.inventory_levels import InventoryLevelsProjection, InventoryLevelsView
from projections.catalog.products import CatalogProductsProjection, CatalogProductsView
from projections.catalog.reviews import ProductReviewsProjection, ProductReviewsView
from projections.engine import View, ViewProjection

CATALOG_VIEWS: list[tuple[type[View], type[ViewProjection[Any]]]] = [
    (CatalogProductsView, CatalogProductsProjection),
    (CatalogCategoriesView, CatalogCategoriesProjection),
    (InventoryLevelsView, InventoryLevelsProjection),
    (ProductReviewsView, ProductReviewsProjection),
]
"""Each catalog view with its projection, for the bootstrap's VIEWS."""

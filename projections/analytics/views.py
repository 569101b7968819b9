"""The analytics views, each with its projection, for the wiring's VIEWS:

- ``analytics_sales`` (``sales``) follows the ordering and catalog logs;
- ``analytics_funnel`` (``funnel``) follows the ordering log (carts and orders);
- ``analytics_payments`` (``payments``) follows the payments log;
- ``analytics_stock`` (``stock``) follows the inventory and catalog logs.
"""

from __future__ import annotations

from typing import Any

from projections.analytics.funnel import FunnelProjection, FunnelView
from projections.analytics.payments import PaymentAttemptsProjection, PaymentAttemptsView
from projections.analytics.sales import SalesProjection, SalesView
from projections.analytics.stock import StockAnalyticsProjection, StockAnalyticsView
from projections.engine import View, ViewProjection

ANALYTICS_VIEWS: list[tuple[type[View], type[ViewProjection[Any]]]] = [
    (SalesView, SalesProjection),
    (FunnelView, FunnelProjection),
    (PaymentAttemptsView, PaymentAttemptsProjection),
    (StockAnalyticsView, StockAnalyticsProjection),
]

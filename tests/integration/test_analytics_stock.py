"""Stock analytics are exact: for generated histories of one SKU (receipts,
adjustments, reservations released or committed, a low-stock threshold), the
projection's stock-outs, low-stock alerts, units shipped, available stock and days
of cover equal what the aggregate itself went through, step by step."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.inventory import StockItem
from infra.wiring.process import Container
from infra.wiring.views import make_view
from projections.analytics.periods import DateRange
from projections.analytics.stock import StockAnalyticsProjection, StockAnalyticsView
from projections.analytics.stock_queries import days_of_cover, stock_cover
from projections.engine import apply_batch
from tests.integration.test_analytics_sales import query

pytestmark = pytest.mark.integration
BY = uuid4()

steps = st.lists(
    st.one_of(
        st.tuples(st.just("receive"), st.integers(1, 20)),
        st.tuples(st.just("adjust"), st.integers(-10, 10).filter(bool)),
        st.tuples(st.just("reserve"), st.integers(1, 15)),
        st.tuples(st.just("reserve_all"), st.just(0)),  # a checkout of the last units
        st.tuples(st.just("release"), st.integers(0, 30)),
        st.tuples(st.just("commit"), st.integers(0, 30)),
        st.tuples(st.just("threshold"), st.integers(0, 8)),
    ),
    min_size=1,
    max_size=40,
)


def test_stock_outs_alerts_and_shipments_equal_the_items_own_history(
    container: Container,
) -> None:
    view = make_view(container.conninfo, StockAnalyticsView, 1)
    assert isinstance(view, StockAnalyticsView)
    today = datetime.now(UTC).date()
    span = DateRange(today, today)

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(history=steps, batch=st.integers(1, 10))
    def example(history: list[tuple[str, int]], batch: int) -> None:
        with psycopg.connect(container.conninfo) as conn:
            tables = ", ".join(f"{view.schema}.{t}" for t in [*view.tables, "tracking"])
            conn.execute(f"TRUNCATE {tables}")
        item = StockItem(sku=f"HY-{uuid4().hex[:8]}")
        open_reservations: list[str] = []
        outs = shipped = 0
        before = item.available
        for n, (kind, value) in enumerate(history):
            try:
                if kind == "receive":
                    item.receive(value, BY)
                elif kind == "adjust":
                    item.adjust(value, "counted", BY)
                elif kind in ("reserve", "reserve_all"):
                    item.reserve(f"r{n}", value or item.available)
                    open_reservations.append(f"r{n}")
                elif kind == "threshold":
                    item.set_low_stock_threshold(value, BY)
                elif open_reservations:
                    reservation = open_reservations.pop(value % len(open_reservations))
                    if kind == "commit":
                        shipped += item.reservations[reservation]
                        item.commit(reservation)
                    else:
                        item.release(reservation)
            except DomainError:
                continue  # refused: nothing recorded, as the command would answer
            after = item.available
            outs += before > 0 >= after
            before = after
        events = item.collect_events()
        alerts = sum(isinstance(e, StockItem.LowStockReached) for e in events)
        deliveries = [(e, Tracking("inventory", i)) for i, e in enumerate(events, start=1)]
        projection = StockAnalyticsProjection(view)
        for start in range(0, len(deliveries), batch):
            apply_batch(view, projection, "inventory", deliveries[start : start + batch])

        page = query(
            container, partial(stock_cover, span=span, seller_id=None, after=None, limit=10)
        )
        (row,) = page.items
        assert (row["on_hand"], row["reserved"]) == (item.on_hand, item.reserved)
        assert row["available"] == item.available
        assert (row["stock_outs"], row["low_stock_alerts"]) == (outs, alerts)
        assert row["shipped"] == shipped
        assert row["days_of_cover"] == days_of_cover(item.available, shipped, 1)
        assert row["days_of_cover"] is None or isinstance(row["days_of_cover"], Decimal)

    try:
        example()
    finally:
        view.datastore.close()

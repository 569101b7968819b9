"""The analytics views over a shop's real history (the checkout saga, shipment,
a decline, a stock-out, a second cart session): a rebuild by ``shop projections
rebuild``'s own function gives exactly the views built event by event, and the
funnel, the payment declines, the sales and the stock figures are the ones the
history implies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from psycopg.rows import dict_row

from domain.carts import cart_id_for
from infra.entrypoints.rebuild import rebuild
from infra.wiring.process import Container
from infra.wiring.views import make_view
from projections.analytics.funnel_queries import funnel
from projections.analytics.payment_queries import payment_declines
from projections.analytics.periods import DateRange, Grouping
from projections.analytics.sales_queries import sales_by_period
from projections.analytics.stock import StockEvent
from projections.analytics.stock_queries import days_of_cover, stock_cover, stock_events
from projections.analytics.views import ANALYTICS_VIEWS
from projections.engine import View
from tests.integration.test_analytics_sales import query
from tests.integration.test_checkout_saga import ADDRESS, ADMIN, checkout, make_saga, product, run

pytestmark = pytest.mark.integration


def write_history(container: Container) -> str:
    """The history; the SKU of its one product."""
    saga = make_saga(container, container.ordering.payments)
    product_id, sku = product(container, price="12.50", stock=5)
    container.inventory_commands.set_low_stock_threshold(ADMIN, sku, 1)
    shipped = checkout(container, product_id, 2, "pm_card_visa")
    checkout(container, product_id, 1, "pm_card_chargeDeclined")
    run(container, saga)
    container.ordering.orders.ship(ADMIN, shipped, "DHL", "JD0001")
    checkout(container, product_id, 3, "pm_card_visa")  # takes the last 3: a stock-out
    # A shopper who checks out, then fills the same cart again: two cart sessions.
    again = uuid4()
    carts = container.ordering.carts
    carts.add(cart_id_for(again), again, product_id, 1)
    carts.checkout(again, uuid4(), ADDRESS, "pm_card_visa")  # finds no stock left
    carts.add(cart_id_for(again), again, product_id, 1)
    run(container, saga)
    container.inventory_commands.receive(ADMIN, sku, 4)
    return sku


def live(container: Container, view: View, projection: Any) -> None:
    """Each followed log's events one by one, as the runner delivers them live."""
    apps = {app.name: app for app in container.applications()}
    for log in view.follows:
        app = apps[log]
        for notification in app.recorder.select_notifications(start=1, limit=100_000):
            projection.process_event(
                app.mapper.to_domain_event(notification), Tracking(log, notification.id)
            )


def contents(conninfo: str, view_class: type[View], generation: int) -> dict[str, list[Any]]:
    found = {}
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        for table in view_class.tables:
            rows = conn.execute(
                f"SELECT * FROM rm_{view_class.name}_g{generation}.{table}"
            ).fetchall()
            found[table] = sorted(rows, key=repr)
    return found


def test_a_rebuild_equals_the_live_views_and_the_figures_follow_the_history(
    container: Container,
) -> None:
    sku = write_history(container)
    for view_class, projection_class in ANALYTICS_VIEWS:
        view = make_view(container.conninfo, view_class, 1)  # migrate made it, empty
        try:
            live(container, view, projection_class(view))
        finally:
            view.datastore.close()
        assert rebuild(container, view_class.name) == 2
        built = contents(container.conninfo, view_class, 2)
        assert built == contents(container.conninfo, view_class, 1), view_class.name
        # Every table has rows (erasures have tests of their own: test_erasure_views).
        assert all(rows for t, rows in built.items() if t != "analytics_erased_customers"), (
            view_class.name
        )

    today = datetime.now(UTC).date()
    span = DateRange(today - timedelta(days=29), today)

    steps = query(container, partial(funnel, span=span))["total"]["steps"]
    assert steps == {
        "carts_created": 5,  # three shoppers' carts, and two sessions of the fourth's
        "carts_with_line": 5,
        "checkouts_started": 4,
        "orders_confirmed": 2,
        "orders_shipped": 1,
        "orders_delivered": 0,
        "orders_returned": 0,
    }

    declines = query(container, partial(payment_declines, span=span))
    assert [(d["method"], d["attempts"], d["declined"]) for d in declines["days"]] == [
        ("sandbox", 3, 1)  # the short order was rejected before any payment
    ]
    assert [c["declined"] for c in declines["codes"]] == [1]

    (sales,) = query(container, partial(sales_by_period, span=span, grouping=Grouping.MONTH))
    assert (sales["placed"], sales["orders"], sales["units"]) == (4, 2, 5)
    assert (sales["gross"], sales["net"]) == (Decimal("62.50"), Decimal("62.50"))
    assert (sales["rejected"], sales["rejection_rate"]) == (2, Decimal("0.5000"))
    assert sales["average_order_value"] == Decimal("31.25")

    page = query(
        container, partial(stock_cover, span=span, seller_id=ADMIN.user_id, after=None, limit=10)
    )
    (row,) = page.items
    assert (row["sku"], row["on_hand"], row["available"], row["shipped"]) == (sku, 7, 4, 2)
    assert (row["stock_outs"], row["low_stock_alerts"]) == (1, 1)
    assert row["days_of_cover"] == Decimal("60.0")  # 4 units at 2 per 30 days
    events = query(
        container,
        partial(stock_events, span=span, kind=None, seller_id=None, after=None, limit=2),
    )
    kinds = [e["kind"] for e in events.items]
    assert events.next_cursor is not None and len(kinds) == 2
    rest = query(
        container,
        partial(
            stock_events, span=span, kind=None, seller_id=None, after=events.next_cursor, limit=10
        ),
    )
    kinds += [e["kind"] for e in rest.items]
    assert sorted(kinds) == sorted(
        [StockEvent.STOCK_OUT, StockEvent.LOW_STOCK, StockEvent.RESTOCKED]
    )
    assert rest.next_cursor is None


def test_days_of_cover() -> None:
    assert days_of_cover(4, 2, 30) == Decimal("60.0")
    assert days_of_cover(1, 3, 7) == Decimal("2.3")
    assert days_of_cover(0, 3, 7) == Decimal(0)
    assert days_of_cover(5, 0, 7) is None

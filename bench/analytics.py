"""Analytics: the sales projection's throughput, and the analytics queries' time at
100,000 orders.

1. ``--orders`` orders (placed, confirmed, shipped with their capture, delivered;
   every fifth partly refunded, every tenth cancelled before capture instead), made
   through the domain and applied to the ``analytics_sales`` and ``analytics_funnel``
   views in batches of 500, as a rebuild's catch-up applies them: events per second
   (the events are in memory: the log's reading and decoding are not counted here,
   ``bench.rebuild`` measures those).
2. ``--scale`` orders of 1-3 lines over 10,000 products, 200 sellers and 50
   categories, spread over a year, written straight into the sales view's tables
   with SQL and analysed; then each query the admin endpoints run, ``--runs`` times
   over the last 30 days and over the whole year: the median time.

Run: ``uv run python -m bench.analytics [--orders 20000 --scale 100000 --runs 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from eventsourcing.persistence import Tracking

from bench._common import (
    DEFAULT_SERVER,
    Table,
    create_database,
    drop_database,
    fmt,
    log,
    machine_lines,
    median,
)
from domain.lines import line
from domain.money import Money
from domain.orders import place_order
from infra.settings import Settings
from infra.wiring.process import bootstrap
from infra.wiring.views import make_view
from projections.analytics.funnel import FunnelProjection, FunnelView
from projections.analytics.funnel_queries import funnel
from projections.analytics.periods import DateRange, Grouping
from projections.analytics.sales import SalesProjection, SalesView
from projections.analytics.sales_queries import (
    Dimension,
    DimensionQuery,
    sales_by_dimension,
    sales_by_period,
    stop_reasons,
)
from projections.engine import View, ViewProjection, apply_batch

BATCH = 500
TODAY = date(2026, 12, 7)


def order_events(count: int) -> list[Any]:
    admin = uuid4()
    events: list[Any] = []
    products = [(uuid4(), f"BENCH-{n}") for n in range(50)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(count):
        at = start + timedelta(minutes=17 * n)
        chosen = [products[(n + k) % 50] for k in range(1 + n % 3)]
        lines = [line(p, sku, 1 + n % 2, Money.of("12.50", "EUR")) for p, sku in chosen]
        order = place_order(uuid4(), uuid4(), lines, {"street": "1 Main St"}, at)
        order.confirm("pay", at)
        if n % 10 == 0:
            order.cancel_by_admin(admin, "out of stock", at)
        else:
            order.ship("DHL", "T1", admin, at)
            order.record_capture("cap", order.total, at)
            order.mark_delivered(at)
            if n % 5 == 0:
                order.record_refund("re", Money.of("5.00", "EUR"), "goodwill", at)
        events += order.collect_events()
    return events


def project(conninfo: str, events: list[Any]) -> tuple[float, float]:
    """Seconds to apply ``events`` to the sales view, and to the funnel view."""
    seconds = []
    pairs: list[tuple[type[View], type[ViewProjection[Any]]]] = [
        (SalesView, SalesProjection),
        (FunnelView, FunnelProjection),
    ]
    for view_class, projection_class in pairs:
        view = make_view(conninfo, view_class, 1)
        projection = projection_class(view)
        deliveries = [(e, Tracking("ordering", n)) for n, e in enumerate(events, start=1)]
        began = time.perf_counter()
        for i in range(0, len(deliveries), BATCH):
            apply_batch(view, projection, "ordering", deliveries[i : i + BATCH])
        seconds.append(time.perf_counter() - began)
        view.datastore.close()
    return seconds[0], seconds[1]


SCALE_SQL = """
TRUNCATE analytics_orders, analytics_order_lines, analytics_products, analytics_categories;
INSERT INTO analytics_categories
  SELECT md5('c' || c)::uuid, 'Category ' || c, NULL, ARRAY[md5('c' || c)::uuid], false,
         now(), now() FROM generate_series(0, 49) c;
INSERT INTO analytics_products
  SELECT md5('p' || p)::uuid, md5('s' || p % 200)::uuid, 'Product ' || p,
         ARRAY[md5('c' || p % 50)::uuid] FROM generate_series(0, 9999) p;
INSERT INTO analytics_order_lines
  SELECT md5('o' || o)::uuid, 'SKU-' || ((o * 7919 + k * 104729) % 10000),
         md5('p' || ((o * 7919 + k * 104729) % 10000))::uuid, 1 + (o + k) % 3,
         (ARRAY['EUR', 'USD', 'GBP'])[1 + o % 3],
         (100 + (o * 31 + k) % 9900) / 100.0 * (1 + (o + k) % 3),
         TODAY::timestamptz - make_interval(secs => (o * 7331) % (365 * 86400))
  FROM generate_series(1, ORDERS) o, generate_series(1, 3) k WHERE k <= 1 + o % 3;
INSERT INTO analytics_orders (order_id, customer_id, currency, total, units, placed_at,
    confirmed, is_sale, captured, refunded, refunds, cancelled_at, cancellation_reason,
    cancelled_by_admin, rejected_at, rejection_reason, returned_at)
  SELECT order_id, order_id, min(currency), sum(amount), sum(quantity), min(placed_at),
         true, bool_and(true), sum(amount), 0, 0, NULL, NULL, NULL, NULL, NULL, NULL
  FROM analytics_order_lines GROUP BY order_id;
UPDATE analytics_orders SET refunded = 5, refunds = 1
  WHERE get_byte(decode(md5(order_id::text), 'hex'), 0) < 26;
UPDATE analytics_orders SET is_sale = false, captured = 0, cancelled_at = placed_at,
    cancellation_reason = 'out of stock', cancelled_by_admin = true
  WHERE get_byte(decode(md5(order_id::text), 'hex'), 1) < 13;
ANALYZE analytics_orders; ANALYZE analytics_order_lines; ANALYZE analytics_products;
"""


def scale(conninfo: str, orders: int) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET search_path TO rm_analytics_sales_g1")
        # Our own constant text with two numbers put in: no parameters, so no placeholders.
        statement = SCALE_SQL.replace("TODAY", f"'{TODAY}'").replace("ORDERS", str(int(orders)))
        conn.execute(statement)


Query = Callable[[psycopg.AsyncConnection[Any]], Awaitable[Any]]


def queries(span: DateRange) -> dict[str, Query]:
    def dimension(d: Dimension) -> Query:
        return lambda c: sales_by_dimension(c, DimensionQuery(d, span), after=None, limit=50)

    return {
        "sales per day": lambda c: sales_by_period(c, span, Grouping.DAY),
        "sales per ISO week": lambda c: sales_by_period(c, span, Grouping.WEEK),
        "sales per month": lambda c: sales_by_period(c, span, Grouping.MONTH),
        "per product (first page of 50)": dimension(Dimension.PRODUCT),
        "per category (first page)": dimension(Dimension.CATEGORY),
        "per seller (first page)": dimension(Dimension.SELLER),
        "cancellations and rejections": lambda c: stop_reasons(c, span),
        "funnel per day": lambda c: funnel(c, span),
    }


async def time_queries(conninfo: str, runs: int) -> list[list[str]]:
    rows = []
    spans = {
        "30 days": DateRange(TODAY - timedelta(days=29), TODAY),
        "365 days": DateRange(TODAY - timedelta(days=364), TODAY),
    }
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        for name in queries(spans["30 days"]):
            cells = [name]
            for span in spans.values():
                call = queries(span)[name]
                await call(conn)  # warm
                times = []
                for _ in range(runs):
                    began = time.perf_counter()
                    await call(conn)
                    times.append((time.perf_counter() - began) * 1000)
                cells.append(fmt(median(times)))
            rows.append(cells)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=DEFAULT_SERVER)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    name, conninfo = create_database(args.postgres, "bench_analytics")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    try:
        settings = Settings(database_url=conninfo, data_dir=data_dir, secret_key="b" * 48)  # type: ignore[arg-type]
        container = bootstrap(settings)
        try:
            container.migrate()
        finally:
            container.close()
        log(f"making {args.orders} orders")
        events = order_events(args.orders)
        log(f"applying {len(events)} events")
        sales_s, funnel_s = project(conninfo, events)
        log(f"writing {args.scale} orders into the sales view")
        scale(conninfo, args.scale)
        log("timing the queries")
        timed = asyncio.run(time_queries(conninfo, args.runs))
    finally:
        drop_database(args.postgres, name)
        shutil.rmtree(data_dir, ignore_errors=True)
    print("## Analytics (`bench.analytics`)\n")
    print("\n".join(machine_lines(args.postgres)) + "\n")
    print(
        Table(
            ["view", "events", "seconds", "events/s"],
            [
                [view, str(len(events)), fmt(s, 2), fmt(len(events) / s, 0)]
                for view, s in (("analytics_sales", sales_s), ("analytics_funnel", funnel_s))
            ],
        ).markdown()
        + "\n"
    )
    print(f"Queries at {args.scale:,} orders, median of {args.runs} runs (ms):\n")
    print(Table(["query", "last 30 days", "last 365 days"], timed).markdown())


if __name__ == "__main__":
    main()

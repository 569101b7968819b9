"""The sales and funnel analytics are exact: for generated orders in several
currencies (rejected, cancelled before and after capture, shipped, delivered,
returned, refunded in full or in parts), every figure the queries answer equals a
direct computation over the orders themselves. The events go through the real
projections into Postgres, in batches of every size, with the catalog's events
before or after the orders' (a rebuild catches up one log after the other)."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import partial
from typing import Any, TypeVar
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.access import Principal
from domain.catalog import create_product
from domain.categories import create_category
from domain.lines import line
from domain.money import CURRENCY_MINOR_UNITS, Money
from domain.order_status import REFUNDABLE, OrderStatus
from domain.orders import Order, place_order
from infra.wiring.process import Container
from infra.wiring.views import make_view
from projections.analytics.funnel import FunnelProjection, FunnelView, Step
from projections.analytics.funnel_queries import funnel
from projections.analytics.periods import DateRange, Grouping, label, period_of
from projections.analytics.sales import SalesProjection, SalesView
from projections.analytics.sales_queries import (
    Dimension,
    DimensionQuery,
    sales_by_dimension,
    sales_by_period,
    stop_reasons,
)
from projections.cursors import Page
from projections.engine import View, ViewProjection, apply_batch

pytestmark = pytest.mark.integration
T = TypeVar("T")

BASE = datetime(2026, 10, 26, tzinfo=UTC)  # a Monday, two months' worth of weeks after it
SPAN = DateRange(BASE.date(), BASE.date() + timedelta(days=75))
ADMIN = Principal(uuid4(), uuid4(), frozenset({"admin"}))
SELLERS = [uuid4(), uuid4()]
CUSTOMER = uuid4()


@dataclass(frozen=True)
class Listed:
    product_id: UUID
    sku: str
    seller_id: UUID
    category_ids: list[UUID]


def catalog_events() -> tuple[list[Any], list[Listed]]:
    """Two categories and four products of two sellers (one product in both
    categories, one in none), through the catalog's own domain."""
    categories = [
        create_category(ADMIN, uuid4(), name, None, lambda _: None) for name in ("Shoes", "Hats")
    ]
    shoes, hats = (c.id for c in categories)
    wanted = [[shoes], [hats], [shoes, hats], []]
    listed, products = [], []
    for i, category_ids in enumerate(wanted):
        seller = SELLERS[i % 2]
        product = create_product(ADMIN, uuid4(), seller, f"AN-{i}-{uuid4().hex[:6]}", f"Item {i}")
        if category_ids:
            product.categorise(ADMIN, category_ids)
        products.append(product)
        listed.append(Listed(product.id, product.sku, seller, category_ids))
    events = [e for aggregate in [*categories, *products] for e in aggregate.collect_events()]
    return events, listed


DECISIONS = ["pending", "rejected", "cancelled_unconfirmed", *["confirmed"] * 5]
"""Confirmed orders weigh most: every fate after confirmation must come up often."""
FATES = ["confirmed", "cancelled", "shipped", "shipped_cancelled", "delivered", "returned"]


@dataclass
class Plan:
    currency: str
    lines: list[tuple[int, int, int]]  # product index, quantity, unit price in minor units
    day: int
    second: int
    decision: str
    fate: str
    refunds: list[int]  # wished amounts in minor units, cut to what is refundable


plans = st.builds(
    Plan,
    currency=st.sampled_from(["EUR", "USD", "JPY", "KWD"]),
    lines=st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 5), st.integers(1, 90_000)),
        min_size=1,
        max_size=3,
        unique_by=lambda t: t[0],
    ),
    day=st.integers(0, 75),
    second=st.integers(0, 86_399),
    decision=st.sampled_from(DECISIONS),
    fate=st.sampled_from(FATES),
    refunds=st.lists(st.integers(1, 200_000), max_size=3),
)


@dataclass
class Placed:
    """An order as generated, and what became of it: the ground truth."""

    order: Order
    plan: Plan
    steps: dict[Step, datetime] = field(default_factory=dict)

    @property
    def sale(self) -> bool:
        confirmed = self.plan.decision == "confirmed"
        return confirmed and not (self.order.cancellation and self.order.captured_amount == 0)


def minor(amount: int, currency: str) -> Money:
    return Money(Decimal(amount).scaleb(-CURRENCY_MINOR_UNITS[currency]), currency)


def make_order(plan: Plan, listed: list[Listed]) -> Placed:
    at = BASE + timedelta(days=plan.day, seconds=plan.second)
    lines = [
        line(listed[i].product_id, listed[i].sku, quantity, minor(price, plan.currency))
        for i, quantity, price in plan.lines
    ]
    order = place_order(uuid4(), CUSTOMER, lines, {"street": "1 Main St"}, at)
    placed = Placed(order, plan, {Step.CHECKOUTS_STARTED: at})
    clock = [at]

    def later(step: Step | None = None) -> datetime:
        clock[0] += timedelta(hours=7)
        if step is not None:
            placed.steps[step] = clock[0]
        return clock[0]

    if plan.decision == "rejected":
        order.reject("the card was declined", later())
    elif plan.decision == "cancelled_unconfirmed":
        order.cancel_by_shopper(CUSTOMER, later(), "changed my mind")
    elif plan.decision == "confirmed":
        order.confirm("pay_1", later(Step.ORDERS_CONFIRMED))
        if plan.fate == "cancelled":
            order.cancel_by_admin(ADMIN.user_id, "out of stock", later())
        elif plan.fate != "confirmed":
            order.ship("DHL", "JD1", ADMIN.user_id, later(Step.ORDERS_SHIPPED))
            order.record_capture("cap_1", order.total, later())
            if plan.fate == "shipped_cancelled":
                order.cancel_by_admin(ADMIN.user_id, "parcel lost", later())
            if plan.fate in ("delivered", "returned"):
                order.mark_delivered(later(Step.ORDERS_DELIVERED))
            if plan.fate == "returned":
                order.request_return(CUSTOMER, "too small", later(), timedelta(days=30))
                order.approve_return(ADMIN.user_id, later())
                order.mark_returned(later(Step.ORDERS_RETURNED))
        for n, wished in enumerate(plan.refunds):
            left = order.captured_amount - order.refunded_amount
            amount = min(minor(wished, plan.currency).amount, left)
            if amount <= 0 or OrderStatus(order.status) not in REFUNDABLE:
                break
            order.record_refund(f"re_{n}", Money(amount, plan.currency), "goodwill", later())
    return placed


def query(container: Container, call: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
    async def go() -> T:
        async with await psycopg.AsyncConnection.connect(container.conninfo) as conn:
            return await call(conn)

    return asyncio.run(go())


def unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-CURRENCY_MINOR_UNITS[currency])


def ratio(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) / whole).quantize(Decimal("0.0001"))


def expected_periods(placed: list[Placed], grouping: Grouping) -> list[dict[str, Any]]:
    groups: dict[tuple[date, str], list[Placed]] = defaultdict(list)
    for p in placed:
        start = period_of(p.order.placed_at.date(), grouping)
        groups[(start, p.order.currency)].append(p)
    rows = []
    for (start, currency), members in sorted(groups.items()):
        sales = [p for p in members if p.sale]
        gross = sum((p.order.total_amount for p in sales), Decimal(0))
        refunded = sum((p.order.refunded_amount for p in sales), Decimal(0))
        refunded_orders = sum(1 for p in sales if p.order.refund_ids)
        returned = sum(1 for p in sales if Step.ORDERS_RETURNED in p.steps)
        cancelled = sum(1 for p in members if p.order.cancellation)
        rejected = sum(1 for p in members if p.plan.decision == "rejected")
        rows.append(
            {
                "period": label(start, grouping),
                "period_start": start,
                "currency": currency,
                "placed": len(members),
                "orders": len(sales),
                "units": sum(q for p in sales for _, q, _ in p.plan.lines),
                "gross": gross,
                "refunded": refunded,
                "net": gross - refunded,
                "average_order_value": (gross / len(sales)).quantize(
                    unit(currency), ROUND_HALF_EVEN
                )
                if sales
                else None,
                "refunded_orders": refunded_orders,
                "refund_rate": ratio(refunded_orders, len(sales)),
                "returned_orders": returned,
                "return_rate": ratio(returned, len(sales)),
                "cancelled": cancelled,
                "cancellation_rate": ratio(cancelled, len(members)),
                "rejected": rejected,
                "rejection_rate": ratio(rejected, len(members)),
            }
        )
    return rows


def expected_dimension(
    placed: list[Placed], listed: list[Listed], dimension: Dimension
) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for p in placed:
        if not p.sale:
            continue
        for i, quantity, price in p.plan.lines:
            product = listed[i]
            keys = {
                Dimension.PRODUCT: [product.product_id],
                Dimension.CATEGORY: product.category_ids,
                Dimension.SELLER: [product.seller_id],
            }[dimension]
            for key in keys:
                row = found.setdefault(
                    (str(key), p.plan.currency),
                    {"orders": set(), "units": 0, "gross": Decimal(0), "returned_units": 0},
                )
                row["orders"].add(p.order.id)
                row["units"] += quantity
                row["gross"] += minor(price, p.plan.currency).amount * quantity
                if Step.ORDERS_RETURNED in p.steps:
                    row["returned_units"] += quantity
    return {key: {**row, "orders": len(row["orders"])} for key, row in found.items()}


async def _page(conn: psycopg.AsyncConnection[Any], q: DimensionQuery, after: str | None) -> Page:
    return await sales_by_dimension(conn, q, after=after, limit=3)


def every_page(container: Container, q: DimensionQuery) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = query(container, partial(_page, q=q, after=cursor))
        rows += page.items
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def reset(conninfo: str, view: View) -> None:
    with psycopg.connect(conninfo) as conn:
        tables = ", ".join(f"{view.schema}.{t}" for t in [*view.tables, "tracking"])
        conn.execute(f"TRUNCATE {tables}")


def feed(
    view: View, projection: ViewProjection[Any], log: str, events: list[Any], size: int
) -> None:
    deliveries = [(e, Tracking(log, n)) for n, e in enumerate(events, start=1)]
    for start in range(0, len(deliveries), size):
        apply_batch(view, projection, log, deliveries[start : start + size])


def test_every_sales_and_funnel_figure_equals_a_direct_computation(
    container: Container,
) -> None:
    sales_view = make_view(container.conninfo, SalesView, 1)
    funnel_view = make_view(container.conninfo, FunnelView, 1)
    assert isinstance(sales_view, SalesView) and isinstance(funnel_view, FunnelView)

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        orders=st.lists(plans, min_size=4, max_size=25),
        batch=st.integers(1, 40),
        catalog_first=st.booleans(),
    )
    def example(orders: list[Plan], batch: int, catalog_first: bool) -> None:
        reset(container.conninfo, sales_view)
        reset(container.conninfo, funnel_view)
        catalog, listed = catalog_events()
        placed = [make_order(plan, listed) for plan in orders]
        ordering = [e for p in placed for e in p.order.collect_events()]
        sales = SalesProjection(sales_view)
        feeds = [("catalog", catalog), ("ordering", ordering)]
        for log, events in feeds if catalog_first else reversed(feeds):
            feed(sales_view, sales, log, events, batch)
        feed(funnel_view, FunnelProjection(funnel_view), "ordering", ordering, batch)

        for grouping in Grouping:
            answered = query(container, partial(sales_by_period, span=SPAN, grouping=grouping))
            assert answered == expected_periods(placed, grouping), grouping

        for dimension in Dimension:
            rows = every_page(container, DimensionQuery(dimension, SPAN))
            order = [(r["currency"], -r["gross"], r["key"]) for r in rows]
            assert order == sorted(order)
            got = {
                (r["key"], r["currency"]): {
                    k: r[k] for k in ("orders", "units", "gross", "returned_units")
                }
                for r in rows
            }
            assert got == expected_dimension(placed, listed, dimension), dimension

        seller = SELLERS[0]
        mine = every_page(container, DimensionQuery(Dimension.PRODUCT, SPAN, seller_id=seller))
        theirs = {str(p.product_id) for p in listed if p.seller_id == seller}
        assert {r["key"] for r in mine} <= theirs

        stops: Counter[tuple[str, bool | None, str]] = Counter()
        for p in placed:
            if p.order.cancellation:
                c = p.order.cancellation
                stops[("cancelled", c["by_admin"], c["reason"])] += 1
            if p.plan.decision == "rejected":
                stops[("rejected", None, "the card was declined")] += 1
        answered_stops = query(container, lambda c: stop_reasons(c, SPAN))
        assert {
            (s["kind"], s["by_admin"], s["reason"]): s["orders"] for s in answered_stops
        } == stops

        answered_funnel = query(container, lambda c: funnel(c, SPAN))
        per_day: Counter[tuple[date, str]] = Counter(
            (at.date(), step.value) for p in placed for step, at in p.steps.items()
        )
        for day in answered_funnel["days"]:
            for step in Step:
                if step in (Step.CARTS_CREATED, Step.CARTS_WITH_LINE):
                    continue  # no carts here: test_analytics_views counts them
                assert day["steps"][step.value] == per_day[(day["day"], step.value)]

    try:
        example()
    finally:
        sales_view.datastore.close()
        funnel_view.datastore.close()

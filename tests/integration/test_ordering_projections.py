"""The orders, payments and carts views: a rebuild from zero (in batches) equals the
live view (event by event); keyset pages cover every order once; the Redis cart
store applies each event once, ignores older and repeated ones, and rebuilds a cart
it lost from the cart's events, giving what Postgres shows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import pytest
import redis
from eventsourcing.persistence import Tracking
from psycopg.rows import dict_row

from domain.carts import Cart, cart_id_for
from domain.money import Money
from domain.order_status import OrderStatus
from infra.redis.carts import RedisCartStore
from infra.wiring.ordering import OrderingHistory
from infra.wiring.process import Container
from infra.wiring.views import make_view
from projections import generations
from projections.engine import View, ViewProjection
from projections.ordering.carts import CartsProjection, CartsView
from projections.ordering.orders import (
    OrdersProjection,
    OrdersView,
    PaymentsProjection,
    PaymentsView,
)
from projections.ordering.queries import OrderFilter, cart_view, list_orders
from streams.replay import catch_up
from tests.integration.test_checkout_saga import ADMIN, checkout, make_saga, product, run

pytestmark = pytest.mark.integration
T = TypeVar("T")

VIEWS: list[tuple[type[View], type[ViewProjection[Any]], str]] = [
    (OrdersView, OrdersProjection, "ordering"),
    (PaymentsView, PaymentsProjection, "payments"),
    (CartsView, CartsProjection, "ordering"),
]


def write_history(container: Container) -> list[UUID]:
    """Orders in every state the saga and the admins reach, and carts merged."""
    saga = make_saga(container, container.ordering.payments)
    product_id, _ = product(container, price="12.50", stock=10)
    orders = [
        checkout(container, product_id, 2, "pm_card_visa"),
        checkout(container, product_id, 1, "pm_card_chargeDeclined"),
        checkout(container, product_id, 1, "pm_card_visa"),
        checkout(container, product_id, 20, "pm_card_visa"),  # short of stock
    ]
    run(container, saga)
    shipped, _, cancelled, _ = orders
    commands = container.ordering.orders
    commands.ship(ADMIN, shipped, "DHL", "JD0001")
    commands.mark_delivered(ADMIN, shipped)
    commands.refund(ADMIN, shipped, Money.of("5.00", "EUR"), "scratched", "r1")
    commands.cancel_by_admin(ADMIN, cancelled, "out of season")
    customer = uuid.uuid4()
    carts = container.ordering.carts
    guest = uuid.uuid4()
    carts.add(guest, None, product_id, 2)
    carts.add(cart_id_for(customer), customer, product_id, 1)
    carts.merge(customer, guest)
    carts.change_quantity(
        cart_id_for(customer), container.catalog_commands.get_product(product_id).sku, 4
    )
    run(container, saga)
    return orders


def live(container: Container, view: View, projection: ViewProjection[Any], log: str) -> None:
    app = _app(container, log)
    for notification in app.recorder.select_notifications(start=1, limit=100_000):
        projection.process_event(
            app.mapper.to_domain_event(notification), Tracking(log, notification.id)
        )


def _app(container: Container, log: str) -> Any:
    return container.ordering.app if log == "ordering" else container.ordering.payments_app


def contents(conninfo: str, view: View) -> dict[str, list[dict[str, Any]]]:
    found = {}
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        for table in view.tables:
            rows = conn.execute(f"SELECT * FROM {view.schema}.{table}").fetchall()
            found[table] = sorted(rows, key=repr)
    return found


def test_a_rebuild_in_batches_equals_the_live_views(container: Container) -> None:
    write_history(container)
    for view_class, projection_class, log in VIEWS:
        first = make_view(container.conninfo, view_class, 7)
        second = make_view(container.conninfo, view_class, 8)
        try:
            live(container, first, projection_class(first), log)
            catch_up(_app(container, log), second, projection_class(second), batch_size=3)
            # Redelivered from zero: the tracked position refuses it all.
            catch_up(_app(container, log), first, projection_class(first), batch_size=5)
            assert contents(container.conninfo, first) == contents(container.conninfo, second)
            assert any(contents(container.conninfo, first).values())
        finally:
            first.datastore.close()
            second.datastore.close()


def query(container: Container, call: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
    async def go() -> T:
        async with await psycopg.AsyncConnection.connect(container.conninfo) as conn:
            return await call(conn)

    return asyncio.run(go())


@pytest.fixture
def served(container: Container) -> list[UUID]:
    orders = write_history(container)
    for view_class, projection_class, log in VIEWS:
        view = make_view(container.conninfo, view_class, 1)
        catch_up(_app(container, log), view, projection_class(view))
        view.datastore.close()
        with container.pool.connection() as conn:
            generations.activate(conn, view_class.name, list(view_class.tables), 1)
    return orders


def test_orders_pages_and_filters(container: Container, served: list[UUID]) -> None:
    seen: list[UUID] = []
    cursor = None
    while True:
        page = query(
            container,
            lambda c, after=cursor: list_orders(c, OrderFilter(), after=after, limit=1),  # type: ignore[misc]
        )
        seen += [row["order_id"] for row in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(served) and len(seen) == len(set(seen))
    statuses = {
        row["order_id"]: row["status"]
        for row in query(container, lambda c: list_orders(c, OrderFilter(), limit=50)).items
    }
    shipped, declined, cancelled, short = served
    assert statuses == {
        shipped: OrderStatus.DELIVERED,
        declined: OrderStatus.REJECTED,
        cancelled: OrderStatus.CANCELLED,
        short: OrderStatus.REJECTED,
    }
    rejected = query(container, lambda c: list_orders(c, OrderFilter(status="rejected")))
    assert {row["order_id"] for row in rejected.items} == {declined, short}
    big = query(
        container,
        lambda c: list_orders(
            c, OrderFilter(currency="EUR", min_total=Money.of("100", "EUR").amount)
        ),
    )
    assert [row["order_id"] for row in big.items] == [short]  # 20 x 12.50


def test_the_redis_cart_store_applies_each_event_once_and_heals(
    container: Container, served: list[UUID], redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    store = RedisCartStore(client, f"test-{uuid.uuid4().hex}:")
    history = OrderingHistory(container.ordering.app)
    cart_ids = {
        UUID(str(n.originator_id))
        for n in container.ordering.app.recorder.select_notifications(start=1, limit=100_000)
        if n.topic.endswith("Cart.Opened")
    }
    events = [
        e
        for n in container.ordering.app.recorder.select_notifications(start=1, limit=100_000)
        if isinstance(e := container.ordering.app.mapper.to_domain_event(n), Cart.Event)
    ]
    for event in events:
        store.apply(event.originator_id, event, history)
    for event in reversed(events):  # repeated and older events change nothing
        store.apply(event.originator_id, event, history)
    for cart_id in cart_ids:
        postgres = query(container, lambda c, i=cart_id: cart_view(c, i))  # type: ignore[misc]
        assert store.get_or_rebuild(cart_id, history) == postgres
    # Redis loses a cart: the next read, or the next event, rebuilds it.
    lost = next(iter(cart_ids))
    client.delete(f"{store._key(lost)}")
    assert store.get_or_rebuild(lost, history) == query(container, lambda c: cart_view(c, lost))
    client.delete(f"{store._key(lost)}")
    latest = [e for e in events if e.originator_id == lost][-1]
    store.apply(lost, latest, history)
    assert store.get_or_rebuild(lost, history) == query(container, lambda c: cart_view(c, lost))
    client.close()

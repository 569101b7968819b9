"""Wiring of the ordering and payments contexts: their Applications, commands, the
checkout saga and its sweep of abandoned authentications, the cart view (Redis when
configured, Postgres otherwise) and the services the HTTP layers get.
``infra.wiring.process`` calls these."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import redis
from eventsourcing.persistence import TrackingRecorder
from psycopg_pool import ConnectionPool

from commands.catalog.inventory import InventoryCommands
from commands.ordering.application import OrderingApplication
from commands.ordering.authentication_timeouts import AbandonedAuthentications
from commands.ordering.carts import CartCommands, Products
from commands.ordering.checkout_saga import CheckoutSaga
from commands.ordering.http.deps import OrderingServices, Webhooks
from commands.ordering.orders import OrderCommands
from commands.ordering.payments import PaymentCommands, PaymentsApplication
from commands.ports import Clock
from infra.payments import ledger as payments_ledger
from infra.postgres import payment_methods
from infra.postgres.awaiting_authentication import (
    OrdersAwaitingAuthentication,
    sweep_interval,
    sweeper,
)
from infra.postgres.payment_methods import PostgresPaymentMethods
from infra.postgres.server import view_datastore
from infra.redis.carts import RedisCartStore
from infra.settings import Settings
from infra.wiring.payments import payment_gateway
from projections.engine import View, generation_schema
from projections.ordering.carts import CartState, RedisCartsProjection
from read_api.ordering import OrderingReadServices
from streams.embedded import ProjectionSpec
from streams.supervision import Supervised

DDL = payments_ledger.DDL + payment_methods.DDL


def tracking_only_view(conninfo: str, name: str, generation: int) -> View:
    """A view without tables, for policies and projections into other stores: a
    follower's pull is then one tracking write."""
    view = View(view_datastore(conninfo, generation_schema(name, generation)))
    view.create_table()
    return view


class OrderingHistory:
    """Cart events from the event store (``projections.ordering.carts.CartHistory``)."""

    def __init__(self, app: OrderingApplication) -> None:
        self._app = app

    def cart_events(self, cart_id: UUID) -> Iterable[Any]:
        return self._app.events.get(cart_id)


@dataclass
class Ordering:
    app: OrderingApplication
    payments_app: PaymentsApplication
    carts: CartCommands
    orders: OrderCommands
    payments: PaymentCommands
    payment_methods: PostgresPaymentMethods
    cart_token_key: bytes
    stripe_webhooks: Webhooks | None
    cart_store: RedisCartStore | None
    sweeper: Supervised

    def close(self) -> None:
        self.sweeper.stop()
        self.app.close()
        self.payments_app.close()

    def services(self) -> OrderingServices:
        return OrderingServices(
            carts=self.carts,
            orders=self.orders,
            payments=self.payments,
            cart_token_key=self.cart_token_key,
            new_guest_cart_id=uuid4,
            stripe_webhooks=self.stripe_webhooks,
        )

    def read_services(self) -> OrderingReadServices:
        store, history = self.cart_store, OrderingHistory(self.app)
        reader: Callable[[UUID], CartState | None] | None = None
        if store is not None:

            def reader(cart_id: UUID) -> CartState | None:
                return store.get_or_rebuild(cart_id, history)

        return OrderingReadServices(self.cart_token_key, reader)


def build_ordering(
    settings: Settings,
    pool: ConnectionPool[Any],
    app_env: dict[str, str],
    products: Products,
    clock: Clock,
) -> Ordering:
    app = OrderingApplication(env=app_env)
    payments_app = PaymentsApplication(env=app_env)
    gateway, webhooks = payment_gateway(settings, pool)
    payments = PaymentCommands(payments_app, gateway)
    methods = PostgresPaymentMethods(pool)
    secret = settings.resolved_secret().encode()
    timeout = settings.payment_authentication_timeout
    abandoned = AbandonedAuthentications(
        app, payments, OrdersAwaitingAuthentication(pool), clock, timedelta(seconds=timeout)
    )
    return Ordering(
        app=app,
        payments_app=payments_app,
        carts=CartCommands(app, products, methods, clock),
        orders=OrderCommands(app, payments, clock, timedelta(days=settings.return_window_days)),
        payments=payments,
        payment_methods=methods,
        cart_token_key=hashlib.sha256(b"eventshop guest carts\0" + secret).digest(),
        stripe_webhooks=webhooks,
        cart_store=(
            RedisCartStore(redis.Redis.from_url(settings.redis_url), settings.product_cache_prefix)
            if settings.redis_url
            else None
        ),
        # Started beside the projections (``Container.start_feed_followers``).
        sweeper=sweeper(abandoned, sweep_interval(timeout)),
    )


def _own_follower(
    app_class: type[OrderingApplication], partition: int
) -> type[OrderingApplication]:
    """The same log (the same name, table and positions) under a class of its own:
    the embedded runner gives each upstream class its own follower thread, so a
    saga partition neither waits for the others nor holds up the views of the log
    (a follower feeds its members one after another)."""
    return type(
        f"{app_class.__name__}SagaPartition{partition}", (app_class,), {"name": app_class.name}
    )


def ordering_specs(
    conninfo: str,
    ordering: Ordering,
    inventory: InventoryCommands,
    clock: Clock,
    partitions: int,
) -> list[ProjectionSpec]:
    """The checkout saga, and the cart view when it lives in Redis (the Postgres
    views are in ``infra.wiring.process.VIEWS``). Each saga partition follows the ordering
    log on a follower of its own and the payments log on the shared one (its payment
    steps are quick: no gateway calls)."""

    def saga(partition: int) -> Callable[[TrackingRecorder], CheckoutSaga]:
        def make(view: TrackingRecorder) -> CheckoutSaga:
            return CheckoutSaga(
                view,
                ordering=ordering.app,
                inventory=inventory,
                payments=ordering.payments,
                payment_methods=ordering.payment_methods,
                clock=clock,
                partition=partition,
                partitions=partitions,
            )

        return make

    specs = [
        ProjectionSpec(
            name=name,
            tables=[],
            upstream=(_own_follower(OrderingApplication, partition), PaymentsApplication),
            make_view=lambda g, name=name: tracking_only_view(conninfo, name, g),  # type: ignore[misc]
            make_projection=saga(partition),
            rebuildable=False,
        )
        for partition in range(partitions)
        for name in [f"{CheckoutSaga.name}_{partition}"]
    ]
    store = ordering.cart_store
    if store is not None:
        history = OrderingHistory(ordering.app)
        specs.append(
            ProjectionSpec(
                name=RedisCartsProjection.name,
                tables=[],
                upstream=(OrderingApplication,),
                make_view=lambda g: tracking_only_view(conninfo, RedisCartsProjection.name, g),
                make_projection=lambda view: RedisCartsProjection(
                    view, store=store, history=history
                ),
                # Redis heals itself (a missing cart is rebuilt from its events).
                rebuildable=False,
            )
        )
    return specs

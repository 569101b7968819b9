"""The ordering area, built: carts and orders (one Application) and payments (its
own), the payment gateway the settings choose, the checkout saga and the sweep of
abandoned authentications, the cart view (Redis when configured, Postgres
otherwise) and the services its HTTP routers get.

The gateway: the sandbox (the default: no network, no account), Stripe
(``SHOP_STRIPE_API_KEY``; webhooks with ``SHOP_STRIPE_WEBHOOK_SECRET``) or PayPal
(``SHOP_PAYPAL_CLIENT_ID`` and ``SHOP_PAYPAL_SECRET``). Every one runs over our
``PaymentLedger``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import redis
import stripe
from eventsourcing.application import Application
from eventsourcing.persistence import TrackingRecorder
from fastapi import APIRouter
from psycopg_pool import ConnectionPool

from commands.catalog.inventory import InventoryCommands
from commands.ordering.application import OrderingApplication
from commands.ordering.authentication_timeouts import AbandonedAuthentications
from commands.ordering.carts import CartCommands, Products
from commands.ordering.checkout_saga import CheckoutSaga
from commands.ordering.http.deps import OrderingServices
from commands.ordering.orders import OrderCommands
from commands.ordering.payment_gateway import PaymentGateway, Webhooks
from commands.ordering.payments import PaymentCommands, PaymentsApplication
from commands.ports import Clock
from infra.entrypoints.sandbox_api import router as sandbox_router
from infra.payments import ledger as payments_ledger
from infra.payments.ledger import PaymentLedger
from infra.payments.paypal import PayPalGateway
from infra.payments.sandbox import SandboxGateway
from infra.payments.stripe import StripeGateway, StripeWebhooks
from infra.postgres import payment_methods
from infra.postgres.awaiting_authentication import (
    OrdersAwaitingAuthentication,
    sweep_interval,
    sweeper,
)
from infra.postgres.payment_methods import PostgresPaymentMethods
from infra.redis.carts import RedisCartStore
from infra.settings import Settings
from infra.wiring.shared import Pools
from infra.wiring.views import own_follower, tracking_only_view, upstream_of, view_specs
from projections.engine import View, ViewProjection
from projections.ordering.carts import CartsProjection, CartState, CartsView, RedisCartsProjection
from projections.ordering.orders import ORDERING_VIEWS
from read_api.ordering import OrderingReadServices
from streams.embedded import ProjectionSpec
from streams.supervision import Supervised

GATEWAY_TIMEOUT_SECONDS = 20.0


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
    specs: list[ProjectionSpec]
    ddl: list[str]
    """The tables of its adapters, created by ``Container.migrate``."""
    routers: tuple[APIRouter, ...]
    """What its adapters need served beside the write API (the sandbox's 3-D
    Secure page)."""

    def applications(self) -> list[Application[Any]]:
        return [self.app, self.payments_app]

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


def build(
    settings: Settings,
    pools: Pools,
    clock: Clock,
    products: Products,
    inventory: InventoryCommands,
) -> Ordering:
    """``products`` and ``inventory`` are the catalog's: checkout prices lines from
    the one and the saga reserves stock with the other."""
    app = OrderingApplication(env=pools.app_env)
    payments_app = PaymentsApplication(env=pools.app_env)
    gateway, webhooks = payment_gateway(settings, pools.pool)
    payments = PaymentCommands(payments_app, gateway)
    methods = PostgresPaymentMethods(pools.pool)
    secret = settings.resolved_secret().encode()
    timeout = settings.payment_authentication_timeout
    abandoned = AbandonedAuthentications(
        app, payments, OrdersAwaitingAuthentication(pools.pool), clock, timedelta(seconds=timeout)
    )
    cart_store = (
        RedisCartStore(redis.Redis.from_url(settings.redis_url), settings.product_cache_prefix)
        if settings.redis_url
        else None
    )
    ordering = Ordering(
        app=app,
        payments_app=payments_app,
        carts=CartCommands(app, products, methods, clock),
        orders=OrderCommands(app, payments, clock, timedelta(days=settings.return_window_days)),
        payments=payments,
        payment_methods=methods,
        cart_token_key=hashlib.sha256(b"eventshop guest carts\0" + secret).digest(),
        stripe_webhooks=webhooks,
        cart_store=cart_store,
        # Started beside the projections (``Container.start_feed_followers``).
        sweeper=sweeper(abandoned, sweep_interval(timeout)),
        specs=[],
        ddl=[payments_ledger.DDL + payment_methods.DDL],
        # The issuer's 3-D Secure page, faked, for the sandbox's challenges.
        routers=(sandbox_router,) if isinstance(gateway, SandboxGateway) else (),
    )
    # With Redis, the cart view lives there (``policy_specs``).
    views: list[tuple[type[View], type[ViewProjection[Any]]]] = [*ORDERING_VIEWS]
    if cart_store is None:
        views.append((CartsView, CartsProjection))
    ordering.specs = view_specs(pools.conninfo, views) + policy_specs(
        pools.conninfo, ordering, inventory, clock, settings.checkout_saga_partitions
    )
    return ordering


def policy_specs(
    conninfo: str,
    ordering: Ordering,
    inventory: InventoryCommands,
    clock: Clock,
    partitions: int,
) -> list[ProjectionSpec]:
    """The checkout saga, and the cart view when it lives in Redis. Each saga
    partition follows the ordering log on a follower of its own and the payments log
    on the shared one (its payment steps are quick: no gateway calls)."""

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
            upstream=tuple(
                own_follower(app, f"SagaPartition{partition}") if app.name == "ordering" else app
                for app in upstream_of(CheckoutSaga)
            ),
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
                upstream=upstream_of(RedisCartsProjection),
                make_view=lambda g: tracking_only_view(conninfo, RedisCartsProjection.name, g),
                make_projection=lambda view: RedisCartsProjection(
                    view, store=store, history=history
                ),
                # Redis heals itself (a missing cart is rebuilt from its events).
                rebuildable=False,
            )
        )
    return specs


class PaymentSettingsMissing(ValueError):
    """The chosen gateway lacks the settings it needs."""


def payment_gateway(
    settings: Settings, pool: ConnectionPool[Any]
) -> tuple[PaymentGateway, Webhooks | None]:
    """The gateway, and the verifier of its webhooks (Stripe's, when configured)."""
    match settings.payment_gateway:
        case "stripe":
            client = _stripe_client(settings)
            gateway = StripeGateway(
                client, PaymentLedger(pool, "stripe"), settings.stripe_return_url
            )
            secret = settings.stripe_webhook_secret
            webhooks = None if secret is None else StripeWebhooks(client, secret.get_secret_value())
            return gateway, webhooks
        case "paypal":
            if settings.paypal_client_id is None or settings.paypal_secret is None:
                raise PaymentSettingsMissing(
                    "SHOP_PAYMENT_GATEWAY=paypal needs SHOP_PAYPAL_CLIENT_ID and SHOP_PAYPAL_SECRET"
                )
            http = httpx.Client(base_url=settings.paypal_base_url, timeout=GATEWAY_TIMEOUT_SECONDS)
            return PayPalGateway(
                http,
                settings.paypal_client_id,
                settings.paypal_secret.get_secret_value(),
                PaymentLedger(pool, "paypal"),
            ), None
    return SandboxGateway(pool, settings.public_url), None


def _stripe_client(settings: Settings) -> stripe.StripeClient:
    if settings.stripe_api_key is None:
        raise PaymentSettingsMissing("SHOP_PAYMENT_GATEWAY=stripe needs SHOP_STRIPE_API_KEY")
    key = settings.stripe_api_key.get_secret_value()
    if settings.stripe_api_base:  # tests: localstripe
        return stripe.StripeClient(key, base_addresses={"api": settings.stripe_api_base})
    return stripe.StripeClient(key, max_network_retries=2)

"""Wiring: the one place that chooses adapters and builds the object graph for a
process. Nothing is built at import time; ``bootstrap`` builds, ``close`` ends."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from eventsourcing.application import Application
from eventsourcing.persistence import TrackingRecorder
from opensearchpy import OpenSearch
from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from commands.catalog.inventory import InventoryApplication, InventoryCommands
from commands.catalog.products import CatalogApplication, CatalogCommands
from commands.catalog.reviews import ReviewCommands, ReviewsApplication
from commands.http.deps import Limits, WriteServices
from commands.ordering.application import OrderingApplication
from commands.ordering.payments import PaymentsApplication
from commands.ports import RateLimiter
from commands.users.accounts import UserCommands, UsersApplication
from commands.users.emails import UserEmails
from commands.users.passwords import PasswordHasher
from commands.users.tokens import TokenCodec
from infra.opensearch import index as opensearch_index
from infra.opensearch.index import ProductIndexer
from infra.opensearch.search import OpenSearchCatalogSearch
from infra.postgres import idempotency, mailbox
from infra.postgres.authenticator import Authenticator
from infra.postgres.idempotency import PostgresIdempotencyStore
from infra.postgres.mailbox import PostgresMailbox
from infra.postgres.purchase_history import OrdersPurchaseHistory
from infra.postgres.server import (
    bounded_connections,
    database_conninfo,
    eventsourcing_env,
    view_datastore,
)
from infra.postgres.waiting import PollingWaiter
from infra.redis import product_cache, search_cache
from infra.redis.product_cache import RedisCacheInvalidator, RedisProductCache
from infra.redis.ratelimit import InProcessRateLimiter, RedisRateLimiter
from infra.redis.search_cache import RedisSearchCache
from infra.settings import Settings
from infra.wiring.ordering import DDL as ORDERING_DDL
from infra.wiring.ordering import Ordering, build_ordering, ordering_specs, tracking_only_view
from projections import dead_letters, generations
from projections.catalog.views import CATALOG_VIEWS
from projections.engine import (
    LogsUndeclared,
    View,
    ViewProjection,
    followed_logs,
    generation_schema,
)
from projections.ordering.carts import CartsProjection, CartsView
from projections.ordering.orders import ORDERING_VIEWS
from projections.users.views import (
    AdminUsersProjection,
    AdminUsersView,
    UserAccessProjection,
    UserAccessView,
    UserProfilesProjection,
    UserProfilesView,
)
from read_api.deps import ReadServices
from streams.embedded import EmbeddedRunner, ProjectionSpec
from streams.product_cache_follower import ProductCacheFollower

log = logging.getLogger(__name__)

USER_VIEWS: list[tuple[type[View], type[ViewProjection[Any]]]] = [
    (UserProfilesView, UserProfilesProjection),
    (AdminUsersView, AdminUsersProjection),
    (UserAccessView, UserAccessProjection),
]
VIEWS = USER_VIEWS + CATALOG_VIEWS + ORDERING_VIEWS + [(CartsView, CartsProjection)]
"""Every rebuildable read model with its projection."""

LOGS: dict[str, type[Application[Any]]] = {
    app.name: app
    for app in (
        UsersApplication,
        CatalogApplication,
        InventoryApplication,
        ReviewsApplication,
        OrderingApplication,
        PaymentsApplication,
    )
}
"""Every bounded context's log, by the name views declare in ``follows``."""


def upstream_of(view_class: type[View]) -> tuple[type[Application[Any]], ...]:
    """The Applications whose logs ``view_class`` declares it follows."""
    logs = followed_logs(view_class)
    unknown = [log for log in logs if log not in LOGS]
    if unknown:
        raise LogsUndeclared(f"view {view_class.name!r} follows unknown logs {unknown}")
    return tuple(LOGS[log] for log in logs)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    conninfo: str
    app_env: dict[str, str]
    pool: ConnectionPool[Connection[Any]]
    read_pool: AsyncConnectionPool[AsyncConnection[Any]]
    users_app: UsersApplication
    tokens: TokenCodec
    user_commands: UserCommands
    mailbox: PostgresMailbox
    idempotency: PostgresIdempotencyStore
    rate_limiter: RateLimiter
    catalog_app: CatalogApplication
    inventory_app: InventoryApplication
    reviews_app: ReviewsApplication
    catalog_commands: CatalogCommands
    inventory_commands: InventoryCommands
    review_commands: ReviewCommands
    ordering: Ordering
    specs: list[ProjectionSpec] = field(default_factory=list)
    runner: EmbeddedRunner | None = None
    product_cache: RedisProductCache | None = None
    """The read side of the product cache; None without Redis (Postgres only)."""
    search_cache: RedisSearchCache | None = None
    """Whole search answers in Redis; None without Redis or with SHOP_SEARCH_CACHE off."""
    cache_invalidator: RedisCacheInvalidator | None = None
    cache_follower: ProductCacheFollower | None = None
    catalog_search: OpenSearchCatalogSearch | None = None
    """Catalog search on OpenSearch; None: PostgreSQL full-text search (the default)."""
    search_indexer: ProductIndexer | None = None

    def write_services(self) -> WriteServices:
        s = self.settings
        return WriteServices(
            users=self.user_commands,
            idempotency=self.idempotency,
            rate_limiter=self.rate_limiter,
            limits=Limits(
                login_per_account=s.login_attempts_per_account,
                login_per_address=s.login_attempts_per_address,
                reset_per_account=s.reset_requests_per_account,
                reset_per_address=s.reset_requests_per_address,
                window_seconds=s.rate_window_seconds,
            ),
            authenticate=Authenticator(self.tokens, self.read_pool),
            catalog=self.catalog_commands,
            inventory=self.inventory_commands,
            reviews=self.review_commands,
        )

    def read_services(self) -> ReadServices:
        return ReadServices(
            pool=self.read_pool,
            authenticate=Authenticator(self.tokens, self.read_pool),
            read_your_writes_timeout=self.settings.read_your_writes_timeout,
            followed_logs={
                spec.name: frozenset(app.name for app in spec.upstream) for spec in self.specs
            },
            product_cache=self.product_cache,
            search_cache=self.search_cache,
            catalog_search=self.catalog_search,
            search_candidates=self.settings.search_candidates,
        )

    def migrate(self) -> None:
        """Create every table that is missing (event store tables are created by the
        Applications themselves), and a first generation of each projection."""
        with self.pool.connection() as conn:
            conn.execute(mailbox.DDL)
            conn.execute(dead_letters.DDL)
            conn.execute(idempotency.DDL)
            conn.execute(ORDERING_DDL)
            if self.search_indexer is not None:
                conn.execute(opensearch_index.DDL)
            generations.create_registry(conn)
        for spec in self.specs:
            self.ensure_generation(spec)

    def ensure_generation(self, spec: ProjectionSpec) -> int:
        """The served generation of ``spec``'s view: a first one made if there is none;
        the one served given the tables a newer version of the view added (a
        table's DDL fills it from the others where it can, as the search copy's does)."""
        with self.pool.connection() as conn:
            active = generations.active_generations(conn).get(spec.name)
            if active is not None and generations.serves_every_table(conn, spec.tables):
                return active
            generation = active or 1
            view = spec.make_view(generation)
            view.datastore.close()  # type: ignore[attr-defined]
            generations.activate(conn, spec.name, spec.tables, generation)
        return generation

    def active_generations(self) -> dict[str, int]:
        with self.pool.connection() as conn:
            return generations.active_generations(conn)

    def start_projections(self) -> None:
        self.runner = EmbeddedRunner(
            specs=self.specs,
            app_env=self.app_env,
            active_generations=self.active_generations,
            ensure_generation=self.ensure_generation,
            conninfo=self.conninfo,
        )
        self.runner.start()
        self.start_feed_followers()

    def start_feed_followers(self) -> None:
        """What follows the product view's change feed rather than the logs (the
        product cache, the search index), and the periodic sweep of abandoned payment
        authentications: beside the projections, in whichever process runs them
        (``shop run``, or each ``shop serve worker``)."""
        if self.cache_invalidator is not None:
            self.cache_follower = ProductCacheFollower(self.pool, self.cache_invalidator)
            self.cache_follower.start()
        if self.search_indexer is not None:
            self.search_indexer.start()
        self.ordering.sweeper.start()

    def background_errors(self) -> dict[str, str]:
        """What is failing now in this process's background work, by name."""
        errors = self.runner.errors() if self.runner else {}
        if self.search_indexer is not None:
            errors.update(self.search_indexer.errors())
        follower = self.cache_follower
        if follower is not None and follower.last_error is not None:
            errors["product_cache_follower"] = follower.last_error
        if self.ordering.sweeper.last_error is not None:
            errors["authentication_sweeper"] = self.ordering.sweeper.last_error
        return errors

    def applications(self) -> list[Application[Any]]:
        """Every bounded context's event store, each with its own log (the relay's input)."""
        return [
            self.users_app,
            self.catalog_app,
            self.inventory_app,
            self.reviews_app,
            self.ordering.app,
            self.ordering.payments_app,
        ]

    def close(self) -> None:
        if self.search_indexer is not None:
            self.search_indexer.stop()
        if self.cache_follower is not None:
            self.cache_follower.stop()
        if self.cache_invalidator is not None:
            self.cache_invalidator.close()
        if self.runner is not None:
            self.runner.stop()
        self.users_app.close()
        self.catalog_app.close()
        self.inventory_app.close()
        self.reviews_app.close()
        self.ordering.close()
        self.pool.close()


def make_view(conninfo: str, view_class: type[View], generation: int) -> View:
    view = view_class(view_datastore(conninfo, generation_schema(view_class.name, generation)))
    view.create_table()
    return view


def projection_specs(c: Container) -> list[ProjectionSpec]:
    """Every projection and policy this process runs, and how to build each."""
    conninfo = c.conninfo
    specs = [
        ProjectionSpec(
            name=view_class.name,
            tables=list(view_class.tables),
            upstream=upstream_of(view_class),
            make_view=lambda g, vc=view_class: make_view(conninfo, vc, g),  # type: ignore[misc]
            make_projection=projection_class,
        )
        for view_class, projection_class in VIEWS
        # With Redis, the cart view lives there (``ordering_specs``).
        if not (view_class is CartsView and c.ordering.cart_store is not None)
    ]

    def user_emails(view: TrackingRecorder) -> UserEmails:
        return UserEmails(
            view,
            users=c.users_app,
            mailer=c.mailbox,
            tokens=c.tokens,
            public_url=c.settings.public_url,
        )

    specs.append(
        ProjectionSpec(
            name=UserEmails.name,
            tables=[],
            upstream=(UsersApplication,),
            make_view=lambda g: tracking_only_view(conninfo, UserEmails.name, g),
            make_projection=user_emails,
            rebuildable=False,
        )
    )
    partitions = c.settings.checkout_saga_partitions
    return specs + ordering_specs(conninfo, c.ordering, c.inventory_commands, utc_now, partitions)


def bootstrap(settings: Settings | None = None) -> Container:
    settings = settings or Settings()
    conninfo = database_conninfo(settings)
    bounded_connections(settings)
    app_env = eventsourcing_env(conninfo, settings)
    pool: ConnectionPool[Connection[Any]] = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=settings.db_pool_size,
        kwargs={"autocommit": True},
        timeout=settings.db_timeout,
        check=ConnectionPool.check_connection,
        open=True,
    )
    read_pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=settings.db_pool_size,
        kwargs={
            "autocommit": True,
            "options": f"-c statement_timeout={int(settings.db_statement_timeout * 1000)}",
        },
        timeout=settings.db_timeout,
        check=AsyncConnectionPool.check_connection,
        open=False,
    )
    users_app = UsersApplication(env=app_env)
    catalog_app = CatalogApplication(env=app_env)
    inventory_app = InventoryApplication(env=app_env)
    reviews_app = ReviewsApplication(env=app_env)
    catalog_commands = CatalogCommands(catalog_app)
    tokens = TokenCodec(
        settings.resolved_secret(),
        access_ttl=timedelta(minutes=settings.access_token_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_days),
    )
    rate_limiter: RateLimiter = (
        RedisRateLimiter(redis.Redis.from_url(settings.redis_url))
        if settings.redis_url
        else InProcessRateLimiter()
    )
    container = Container(
        settings=settings,
        conninfo=conninfo,
        # Followers (runners, rebuilds) open more Applications on these stores: no
        # DDL from them, since concurrent CREATE OR REPLACE FUNCTION fails with
        # "tuple concurrently updated". The Applications above created the tables.
        # A follower needs two connections (LISTEN, and reading the log), no more.
        app_env={**app_env, "CREATE_TABLE": "false", "POSTGRES_MAX_OVERFLOW": "1"},
        pool=pool,
        read_pool=read_pool,
        users_app=users_app,
        tokens=tokens,
        user_commands=UserCommands(
            users_app, PasswordHasher(), tokens, utc_now, PollingWaiter(pool)
        ),
        mailbox=PostgresMailbox(pool),
        idempotency=PostgresIdempotencyStore(pool),
        rate_limiter=rate_limiter,
        catalog_app=catalog_app,
        inventory_app=inventory_app,
        reviews_app=reviews_app,
        catalog_commands=catalog_commands,
        inventory_commands=InventoryCommands(inventory_app, catalog_commands),
        review_commands=ReviewCommands(reviews_app, catalog_commands, OrdersPurchaseHistory(pool)),
        ordering=build_ordering(settings, pool, app_env, catalog_commands, utc_now),
    )
    if settings.redis_url:
        search_refresh = settings.search_cache_refresh if settings.search_cache else None
        container.product_cache, container.cache_invalidator = product_cache.connect(
            settings.redis_url,
            settings.product_cache_prefix,
            settings.product_cache_ttl,
            search_refresh,
        )
        if settings.search_cache:
            container.search_cache = search_cache.connect(
                settings.redis_url, settings.product_cache_prefix, settings.search_cache_ttl
            )
    if settings.opensearch_url:
        search_client = OpenSearch(hosts=[settings.opensearch_url], timeout=10)
        alias = settings.opensearch_index
        container.search_indexer = ProductIndexer(search_client, pool, alias)
        container.catalog_search = OpenSearchCatalogSearch(search_client, read_pool, alias)
    container.specs = projection_specs(container)
    return container

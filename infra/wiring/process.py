"""A process, assembled from its areas: the pools, the shared ports (idempotency
keys, rate limits), each area built by its own wiring module, every projection and
policy they declare, and the embedded runner that follows the logs. Nothing is
built at import time; ``bootstrap`` builds, ``close`` ends."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import redis
from eventsourcing.application import Application
from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from commands.catalog.http.deps import CatalogServices
from commands.catalog.inventory import InventoryApplication, InventoryCommands
from commands.catalog.products import CatalogApplication, CatalogCommands
from commands.catalog.reviews import ReviewCommands, ReviewsApplication
from commands.http.deps import WriteServices
from commands.ports import AsyncRateLimiter, RateLimiter
from commands.seeding.catalog import CatalogSeeder
from commands.users.accounts import UserCommands, UsersApplication
from commands.users.http.deps import Limits, UsersServices
from commands.users.tokens import TokenCodec
from infra.entrypoints import notification_metrics
from infra.postgres import idempotency
from infra.postgres.existing_aggregates import existing_aggregates
from infra.postgres.idempotency import PostgresIdempotencyStore
from infra.postgres.mailbox import PostgresMailbox
from infra.redis.product_cache import RedisCacheInvalidator, RedisProductCache
from infra.redis.ratelimit import (
    AsyncInProcessRateLimiter,
    AsyncRedisRateLimiter,
    InProcessRateLimiter,
    RedisRateLimiter,
)
from infra.redis.reads import reader_client
from infra.redis.search_cache import RedisSearchCache
from infra.settings import Settings
from infra.wiring import analytics, catalog, notifications, ordering, users
from infra.wiring import audit as audit_wiring
from infra.wiring.audit import Audit
from infra.wiring.catalog import Catalog
from infra.wiring.notifications import Notifications
from infra.wiring.ordering import Ordering
from infra.wiring.shared import Pools, open_pools, utc_now
from infra.wiring.users import Users
from projections import dead_letters, generations
from projections.catalog.search import CatalogSearch
from read_api.deps import ReadServices
from streams.embedded import EmbeddedRunner, ProjectionPart, ProjectionSpec
from streams.product_cache_follower import ProductCacheFollower
from streams.supervision import LOOPS

if TYPE_CHECKING:
    from infra.opensearch.index import ProductIndexer  # opensearchpy: only when configured

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    pools: Pools
    users: Users
    catalog: Catalog
    ordering: Ordering
    notifications: Notifications
    idempotency: PostgresIdempotencyStore
    rate_limiter: RateLimiter
    route_limiter: AsyncRateLimiter
    """Every request's, by route family (``infra.entrypoints.route_limits``)."""
    specs: list[ProjectionSpec] = field(default_factory=list)
    """Every projection and policy this process runs, as its areas declare them."""
    runner: EmbeddedRunner | None = None
    followers_started: bool = False
    audit: Audit | None = None
    """The hash chain over every log and its signed heads (ADR 0023)."""

    # The parts tests, benchmarks and the CLI reach for by name.
    @property
    def conninfo(self) -> str:
        return self.pools.conninfo

    @property
    def app_env(self) -> dict[str, str]:
        """The environment of the Applications followers open (no DDL from them)."""
        return self.pools.follower_env

    @property
    def pool(self) -> ConnectionPool[Connection[Any]]:
        return self.pools.pool

    @property
    def read_pool(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        return self.pools.read_pool

    @property
    def users_app(self) -> UsersApplication:
        return self.users.app

    @property
    def tokens(self) -> TokenCodec:
        return self.users.tokens

    @property
    def user_commands(self) -> UserCommands:
        return self.users.commands

    @property
    def mailbox(self) -> PostgresMailbox:
        return self.notifications.mailbox

    @property
    def catalog_app(self) -> CatalogApplication:
        return self.catalog.app

    @property
    def inventory_app(self) -> InventoryApplication:
        return self.catalog.inventory_app

    @property
    def reviews_app(self) -> ReviewsApplication:
        return self.catalog.reviews_app

    @property
    def catalog_commands(self) -> CatalogCommands:
        return self.catalog.commands

    @property
    def inventory_commands(self) -> InventoryCommands:
        return self.catalog.inventory

    @property
    def review_commands(self) -> ReviewCommands:
        return self.catalog.reviews

    @property
    def catalog_search(self) -> CatalogSearch:
        return self.catalog.search

    @property
    def search_indexer(self) -> ProductIndexer | None:
        return self.catalog.search_indexer

    @property
    def product_cache(self) -> RedisProductCache | None:
        return self.catalog.product_cache

    @property
    def search_cache(self) -> RedisSearchCache | None:
        return self.catalog.search_cache

    @property
    def cache_invalidator(self) -> RedisCacheInvalidator | None:
        return self.catalog.cache_invalidator

    @property
    def cache_follower(self) -> ProductCacheFollower | None:
        return self.catalog.cache_follower

    def write_services(self) -> WriteServices:
        return WriteServices(idempotency=self.idempotency, authenticate=self.users.authenticate)

    def users_services(self) -> UsersServices:
        s = self.settings
        return UsersServices(
            users=self.users.commands,
            rate_limiter=self.rate_limiter,
            limits=Limits(
                login_per_account=s.login_attempts_per_account,
                login_per_address=s.login_attempts_per_address,
                reset_per_account=s.reset_requests_per_account,
                reset_per_address=s.reset_requests_per_address,
                window_seconds=s.rate_window_seconds,
            ),
            carts=self.ordering.carts,
        )

    def catalog_services(self) -> CatalogServices:
        c = self.catalog
        return CatalogServices(catalog=c.commands, inventory=c.inventory, reviews=c.reviews)

    def read_services(self) -> ReadServices:
        return ReadServices(
            pool=self.pools.read_pool,
            authenticate=self.users.authenticate,
            read_your_writes_timeout=self.settings.read_your_writes_timeout,
            followed_logs={
                spec.name: frozenset(app.name for app in spec.upstream) for spec in self.specs
            },
            catalog_search=self.catalog.search,
            product_cache=self.catalog.product_cache,
            search_cache=self.catalog.search_cache,
        )

    def seeder(self, password_hash: str) -> CatalogSeeder:
        """The bulk seeder over this process's event stores (``shop seed catalog``);
        every account it makes has the password of ``password_hash``."""
        return CatalogSeeder(
            self.users.app,
            self.catalog.app,
            self.catalog.inventory_app,
            self.catalog.reviews_app,
            existing_aggregates,
            password_hash,
            utc_now,
        )

    def migrate(self) -> None:
        """Create every table that is missing (event store tables are created by the
        Applications themselves), and a first generation of each projection."""
        with self.pool.connection() as conn:
            conn.execute(dead_letters.DDL)
            conn.execute(idempotency.DDL)
            for ddl in (
                self.users.ddl + self.catalog.ddl + self.ordering.ddl + self.notifications.ddl
            ):
                conn.execute(ddl)
            for ddl in self.audit.ddl if self.audit else []:
                conn.execute(ddl)
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

    def start_projections(self, part: ProjectionPart = ProjectionPart.ALL) -> None:
        """Run the projections and policies of ``part``, with the followers and loops
        that go with them."""
        self.runner = EmbeddedRunner(
            specs=[spec for spec in self.specs if part.runs(spec)],
            app_env=self.app_env,
            active_generations=self.active_generations,
            ensure_generation=self.ensure_generation,
            conninfo=self.conninfo,
        )
        self.runner.start()
        self.start_feed_followers(part)

    def start_feed_followers(self, part: ProjectionPart = ProjectionPart.ALL) -> None:
        """What follows the product view's change feed rather than the logs (the
        product cache, the search index), and the periodic sweep of abandoned payment
        authentications: beside the projections, in whichever process runs them
        (``shop run``, or each ``shop serve worker``). Once: projections restarted
        leave them running."""
        if self.followers_started:
            return
        self.followers_started = True
        if part is not ProjectionPart.BACKGROUND:
            self.catalog.start_followers(self.pools)
            self.ordering.sweeper.start()
        if part is not ProjectionPart.FOREGROUND:
            self.notifications.start_workers()
            if self.audit is not None:
                self.audit.start()

    def background_errors(self) -> dict[str, str]:
        """What is failing now in this process's background work, by name: read from
        the process's one list of it (every supervised loop, every projection)."""
        return LOOPS.errors()

    def applications(self) -> list[Application[Any]]:
        """Every bounded context's event store, each with its own log (the relay's input)."""
        areas = (self.users, self.catalog, self.ordering, self.notifications)
        return [app for area in areas for app in area.applications()]

    def close(self) -> None:
        if self.audit is not None:
            self.audit.stop()
        self.notifications.close()
        self.catalog.close()
        if self.runner is not None:
            self.runner.stop()
        self.users.close()
        self.ordering.close()
        self.pool.close()


def bootstrap(settings: Settings | None = None) -> Container:
    settings = settings or Settings()
    pools = open_pools(settings)
    rate_limiter: RateLimiter = (
        RedisRateLimiter(redis.Redis.from_url(settings.redis_url))
        if settings.redis_url
        else InProcessRateLimiter()
    )
    route_limiter: AsyncRateLimiter = (
        AsyncRedisRateLimiter(reader_client(settings.redis_url))
        if settings.redis_url
        else AsyncInProcessRateLimiter()
    )
    users_area = users.build(settings, pools, utc_now)
    catalog_area = catalog.build(settings, pools, utc_now)
    ordering_area = ordering.build(
        settings, pools, utc_now, catalog_area.commands, catalog_area.inventory
    )
    notifications_area = notifications.build(
        settings,
        pools,
        utc_now,
        apps={
            app.name: app
            for app in users_area.applications()
            + catalog_area.applications()
            + ordering_area.applications()
        },
        sellers=catalog_area.commands,
        tokens=users_area.tokens,
        on_outcome=notification_metrics.on_outcome,
    )
    container = Container(
        settings=settings,
        pools=pools,
        users=users_area,
        catalog=catalog_area,
        ordering=ordering_area,
        notifications=notifications_area,
        idempotency=PostgresIdempotencyStore(pools.pool),
        rate_limiter=rate_limiter,
        route_limiter=route_limiter,
        specs=users_area.specs
        + catalog_area.specs
        + ordering_area.specs
        + [replace(spec, background=True) for spec in notifications_area.specs]
        + [replace(spec, background=True) for spec in analytics.specs(pools)],
    )
    container.audit = audit_wiring.build(settings, pools)
    try:
        check_stored_events_decode(container.applications())
    except StoredEventsUnreadable:
        container.close()
        raise
    return container


class StoredEventsUnreadable(RuntimeError):
    """The event store holds state this process cannot decode: the wrong key."""


def check_stored_events_decode(apps: list[Application[Any]]) -> None:
    """Each log's newest event's state decodes with this process's cipher (or its
    absence). A wrong SHOP_ENCRYPTION_KEY, or a key given or dropped over events
    stored the other way, would otherwise start a process whose every read fails
    and whose projections dead-letter every event: refused at start-up instead.
    Only the state is checked, not the topic: an event of an unknown class is a
    poison event, which the projections dead-letter (ADR 0016), and no reason to
    stay down."""
    for app in apps:
        newest = app.recorder.max_notification_id()
        if newest is None:
            continue
        mapper = app.mapper
        for notification in app.recorder.select_notifications(start=newest, limit=1):
            try:
                state = notification.state
                if mapper.cipher:
                    state = mapper.cipher.decrypt(state)
                if mapper.compressor:
                    state = mapper.compressor.decompress(state)
                mapper.transcoder.decode(state)
            except ValueError as error:  # damaged cipher text, or no JSON
                raise StoredEventsUnreadable(
                    f"the {app.name} events do not decode: SHOP_ENCRYPTION_KEY is not the "
                    f"key they were written with (or they were written without one, or "
                    f"with one and it is unset now): {error}"
                ) from error

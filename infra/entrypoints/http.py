"""The HTTP application of a process: the write and read routers, problem+json
errors, the request edge (size, text, parsing and card-data rules), request metrics and
access log, health and metrics."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool

from commands.catalog.http import inventory as inventory_commands
from commands.catalog.http import products as catalog_commands
from commands.catalog.http import reviews as review_commands
from commands.notifications.http import admin as notification_admin_commands
from commands.notifications.http import devices as device_commands
from commands.notifications.http import feedback as feedback_commands
from commands.notifications.http import inbox as inbox_commands
from commands.notifications.http import unsubscribe as unsubscribe_commands
from commands.ordering.http import carts as cart_commands
from commands.ordering.http import orders as order_commands
from commands.ordering.http import webhooks as webhook_commands
from commands.users.http import account as user_commands
from commands.users.http import admin as admin_commands
from commands.users.http import auth as auth_commands
from commands.users.http import link_pages
from infra.entrypoints import (
    health,
    metrics_endpoint,
    notification_stream,
    openapi,
    problems,
    protection,
)
from infra.entrypoints.logs import configure_logging
from infra.entrypoints.mailbox_api import router as mailbox_router
from infra.entrypoints.request_edge import RequestEdge
from infra.entrypoints.request_metrics import ObservedRequests
from infra.settings import Settings
from infra.wiring import tracing
from infra.wiring.audit_history import services as audit_services
from infra.wiring.process import Container, bootstrap
from read_api import analytics as analytics_queries
from read_api import catalog as catalog_queries
from read_api import notification_admin
from read_api import notifications as inbox_queries
from read_api import ordering as ordering_queries
from read_api import users as user_queries
from read_api.audit import router as audit_router


def worker_app() -> FastAPI:
    """One HTTP worker of ``shop run --workers N``: the parent process has migrated
    the database and runs the projections."""
    # No DDL from the workers' Applications: concurrent CREATE OR REPLACE FUNCTION
    # fails ("tuple concurrently updated"), and the parent created everything.
    os.environ["CREATE_TABLE"] = "false"
    settings = Settings()
    configure_logging(settings.log_format)
    tracing.install(settings, "embedded")
    return create_app(bootstrap(settings), run_projections=False, tune_gc=True)


GC_THRESHOLDS = (50_000, 20, 1_000)
"""A young collection every 50,000 net allocations, a full one after 20,000 of them
at the soonest (CPython's default: 700, 10, 10)."""


def tune_gc_for_serving() -> None:
    """Each open inbox stream keeps about 200 objects the collector tracks: at 10,000
    streams a full collection stopped the event loop for 1.3 s, in the middle of a
    broadcast. Frozen start-up objects are never scanned again, and the thresholds
    make full collections rare (bench/README.md, "Live inbox", has the pauses measured)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


READ_ROUTERS = (
    catalog_queries.router,
    user_queries.router,
    ordering_queries.router,
    notification_admin.router,
    inbox_queries.router,
    notification_stream.router,
    audit_router,
    analytics_queries.router,
)
"""What the read API serves (``shop serve read-api``): GET only. Outside production
also ``/admin/mailbox``, the local mailbox the embedded mode delivers to."""
WRITE_ROUTERS = (
    auth_commands.router,
    user_commands.router,
    admin_commands.router,
    catalog_commands.products,
    catalog_commands.categories,
    inventory_commands.router,
    review_commands.product_reviews,
    review_commands.router,
    cart_commands.router,
    order_commands.router,
    webhook_commands.router,
    notification_admin_commands.router,
    inbox_commands.router,
    device_commands.router,
    unsubscribe_commands.router,
    feedback_commands.router,
    link_pages.router,  # the pages the mails link to; their forms run commands
)
"""What the write API serves (``shop serve write-api``): the commands."""


def create_app(
    container: Container,
    *,
    run_projections: bool = True,
    serve_writes: bool = True,
    serve_reads: bool = True,
    tune_gc: bool = False,
) -> FastAPI:
    """``tune_gc``: a process that serves (``shop run``, ``shop serve``), not a test's
    app, freezes what start-up made and collects less often (``tune_gc_for_serving``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(container.migrate)
        if run_projections:
            await run_in_threadpool(container.start_projections)
        await container.read_pool.open()
        hub: notification_stream.StreamHub = app.state.notification_stream
        if serve_reads:
            await hub.start()
        if tune_gc:
            tune_gc_for_serving()
        try:
            yield
        finally:
            await hub.close()  # first: the open streams end, then the pools
            for cache in (container.product_cache, container.search_cache):
                if cache is not None:
                    await cache.close()
            await container.route_limiter.close()
            await container.read_pool.close()
            await health_check.close()
            await run_in_threadpool(container.close)

    app = FastAPI(
        title="eventshop",
        version="0.1.0",
        description="Event-sourced commerce backend. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
        # FastAPI's own spans: one per request, named by method and route template,
        # with the request's method, route and status (semantic conventions); they
        # go wherever infra.wiring.tracing sends them, nowhere when it installs none.
        # Its metrics and logs stay off: /metrics and the process's logging have them.
        telemetry={"metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.container = container
    app.state.health = health_check = health.Health(container, runs_projections=run_projections)
    app.state.write = container.write_services()
    app.state.users = container.users_services()
    app.state.catalog = container.catalog_services()
    app.state.read = container.read_services()
    app.state.ordering = container.ordering.services()
    app.state.ordering_read = container.ordering.read_services()
    app.state.audit = audit_services(container.applications())
    notifications = container.notifications
    app.state.notifications = notifications.services
    app.state.notification_stream = notification_stream.StreamHub(
        container.conninfo, notifications.inbox, notifications.tickets
    )
    # The catalog's queries first: product detail is the hottest route, and every
    # router tried before the matching one costs each request (FastAPI matches
    # router by router; see bench/README.md, "Product detail from the Redis cache").
    # Then the commands, then the other queries: a command walked every read route
    # first, 12% of a PATCH /users/me's CPU in the event loop (bench/README.md,
    # "Where a request's CPU goes"). No command answers GET, so no route of one
    # kind shadows a route of the other.
    reads = READ_ROUTERS if serve_reads else ()
    routers = reads[:1] + (WRITE_ROUTERS if serve_writes else ()) + reads[1:]
    for router in routers:
        app.include_router(router)
    if serve_reads and container.settings.environment != "production":
        app.include_router(mailbox_router)
    if serve_writes:
        for router in container.ordering.routers:
            app.include_router(router)
    app.include_router(health.router)
    problems.install(app)
    openapi.install(app)
    metrics_endpoint.install(app, container)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> dict[str, str]:
        return {"name": "eventshop", "docs": str(request.url_for("swagger_ui_html"))}

    app.add_middleware(RequestEdge, max_bytes=container.settings.max_body_bytes)
    protection.install(app, container)  # around the request edge
    app.add_middleware(ObservedRequests, routes=app.routes)  # last added: outermost
    return app

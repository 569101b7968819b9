"""The HTTP application of a process: the write and read routers, problem+json
errors, the body limit, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from commands.http import admin as admin_commands
from commands.http import auth as auth_commands
from commands.http import catalog as catalog_commands
from commands.http import inventory as inventory_commands
from commands.http import reviews as review_commands
from commands.http import users as user_commands
from infra import problems
from infra.body_limit import BodyLimit
from infra.bootstrap import Container
from infra.mailbox_api import router as mailbox_router
from infra.metrics import ProjectionLagCollector
from read_api import catalog as catalog_queries
from read_api import users as user_queries


def create_app(container: Container, *, run_projections: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(container.migrate)
        if run_projections:
            await run_in_threadpool(container.start_projections)
        await container.read_pool.open()
        try:
            yield
        finally:
            await container.read_pool.close()
            await run_in_threadpool(container.close)

    app = FastAPI(
        title="eventshop",
        version="0.1.0",
        description="Event-sourced commerce backend. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.write = container.write_services()
    app.state.read = container.read_services()
    for router in (
        auth_commands.router,
        user_commands.router,
        admin_commands.router,
        catalog_commands.products,
        catalog_commands.categories,
        inventory_commands.router,
        review_commands.product_reviews,
        review_commands.router,
        user_queries.router,
        catalog_queries.router,
        mailbox_router,
    ):
        app.include_router(router)
    problems.install(app)

    registry = CollectorRegistry()
    registry.register(ProjectionLagCollector(container))

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, Any]:
        """Liveness and projection failures (a failed projection is restarted)."""
        errors = container.runner.errors() if container.runner else {}
        return {"status": "degraded" if errors else "ok", "projection_errors": errors}

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> dict[str, str]:
        return {"name": "eventshop", "docs": str(request.url_for("swagger_ui_html"))}

    app.add_middleware(BodyLimit, max_bytes=container.settings.max_body_bytes)
    return app

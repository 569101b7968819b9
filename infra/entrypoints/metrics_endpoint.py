"""``GET /metrics``: what an app's Prometheus registry holds, and who may scrape it.

- ``SHOP_METRICS_TOKEN`` set: only with ``Authorization: Bearer <token>`` (compared
  in constant time); otherwise 401 problem+json.
- Unset: open in development; in production not served at all (404), so that a
  deployment that forgot the token does not publish its figures.

Counts kept in memory (requests, deliveries) are per process. Under ``shop run
--workers N`` each worker writes them to files in ``PROMETHEUS_MULTIPROC_DIR``
(``cli.run`` sets it to ``<data dir>/metrics``) and a scrape of any worker adds up
every worker's; everything else is read from the database at scrape time, the same
from any process."""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from infra.entrypoints import notification_metrics, request_metrics
from infra.entrypoints.business_metrics import BusinessCollector
from infra.entrypoints.metrics import ProjectionLagCollector
from infra.entrypoints.problems import problem
from infra.wiring.process import Container

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's own variable, read when it is first imported."""


def live_collectors(counted: Iterable[Collector]) -> list[Collector]:
    """``counted`` (metrics this process keeps in memory), or in multiprocess mode
    the files every worker writes them to (registering both would count twice)."""
    path = os.environ.get(MULTIPROCESS_DIR)
    if path:
        return [MultiProcessCollector(None, path)]  # type: ignore[no-untyped-call]
    return list(counted)


def registry_of(container: Container) -> CollectorRegistry:
    registry = CollectorRegistry()
    counted = [*request_metrics.COUNTED, *notification_metrics.COUNTED]
    collectors: list[Collector] = [
        *live_collectors(counted),
        ProjectionLagCollector(container),
        BusinessCollector(container.pool, [app.name for app in container.applications()]),
        *container.catalog.collectors(),
        notification_metrics.NotificationCollector(container.notifications.queue, container.pool),
    ]
    for collector in collectors:
        registry.register(collector)
    return registry


def install(app: FastAPI, container: Container) -> None:
    settings = container.settings
    token = settings.metrics_token
    if token is None and settings.environment == "production":
        return
    registry = registry_of(container)
    expected = f"Bearer {token.get_secret_value()}".encode() if token is not None else None

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(given, expected):
                return problem(
                    401,
                    "unauthenticated",
                    "/metrics needs Authorization: Bearer <SHOP_METRICS_TOKEN>",
                    {"WWW-Authenticate": "Bearer"},
                )
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

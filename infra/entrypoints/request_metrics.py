"""The one ASGI middleware every HTTP request passes first: its request id, its
Prometheus metrics, its access log line, and the actor its commands' events name
(``request_context.request_actor``).

- ``http_requests_total{method, route, status}``, counted when the answer starts.
- ``http_request_duration_seconds{method, route}``: until the answer's last byte.
  An event stream (``text/event-stream``: the inbox stream) is timed to its headers
  instead, the time it took to open: its whole life would put a ten-minute
  "request" in the top bucket, and the p95 alert would fire on open streams.
- ``http_requests_in_flight``: requests not answered yet (an event stream leaves it
  once open).

``route`` is the route's template (``/products/{product_id}``), never the raw path:
one series per route, whatever ids are asked for. A request no route matches is
``unmatched``; a method outside ``METHODS`` is ``other``.

A pure ASGI middleware, not Starlette's ``BaseHTTPMiddleware``: that one buffers
through a memory stream and would hold up a streamed answer."""

from __future__ import annotations

import logging
import time
from functools import cache

from prometheus_client import Counter, Gauge, Histogram
from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commands import actors
from infra.entrypoints.request_context import (
    CURRENT,
    REQUEST_ID_HEADER,
    RequestContext,
    request_actor,
    request_id_from,
)

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0)
"""Fine around the 200 ms target, so that the p95 alert's quantile is resolved there."""

# Unregistered, as notification_metrics' counters: each app's registry takes them.
REQUESTS = Counter(
    "http_requests", "HTTP requests answered", ["method", "route", "status"], registry=None
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request (an event stream: to open it)",
    ["method", "route"],
    buckets=BUCKETS,
    registry=None,
)
IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "HTTP requests not answered yet",
    registry=None,
    multiprocess_mode="livesum",  # the live workers' sum under shop run --workers N
)
COUNTED = (REQUESTS, DURATION, IN_FLIGHT)

ACCESS_LOGGER = "eventshop.access"
access_log = logging.getLogger(ACCESS_LOGGER)


# The children by their labels, without prometheus_client's lock and lookup on each
# request: bounded, as the labels are (route templates, METHODS, statuses).
@cache
def _requests(method: str, route: str, status: int) -> Counter:
    return REQUESTS.labels(method, route, str(status))


@cache
def _duration(method: str, route: str) -> Histogram:
    return DURATION.labels(method, route)


class ObservedRequests:
    """``routes``: the app's, to name the route of a request answered before routing
    (a refusal of the request edge) or by none (404)."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(scope, self.routes)
        reset = CURRENT.set(exchange.context)
        acting = actors.set_source(request_actor(exchange.context, scope))

        async def observing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append(REQUEST_ID_HEADER, exchange.context.request_id)
                exchange.started(message["status"])
                if headers.get("content-type", "").startswith("text/event-stream"):
                    exchange.answered()
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                exchange.answered()

        try:
            await self.app(scope, receive, observing_send)
        except Exception:
            # Starlette's outermost middleware answers the 500 after this one. The
            # context stays set for its "unhandled error" line (the request's task
            # ends soon after, and its context with it).
            exchange.started(500)
            exchange.answered()
            raise
        exchange.answered()  # a no-op if answered; else the client left first
        actors.reset_source(acting)
        CURRENT.reset(reset)


class _Exchange:
    """One request's observation: counted once at its start, timed and logged once."""

    def __init__(self, scope: Scope, routes: list[BaseRoute]) -> None:
        self._began = time.perf_counter()
        self._scope = scope
        self._routes = routes
        request_id = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        self.context = RequestContext(request_id_from(request_id))
        self._method = scope["method"] if scope["method"] in METHODS else "other"
        self._status: int | None = None
        self._route = UNMATCHED
        self._done = False
        IN_FLIGHT.inc()

    def started(self, status: int) -> None:
        if self._status is None:
            self._status = status
            self._route = self._route_of_request()  # routed by now, if a route matches
            _requests(self._method, self._route, status).inc()

    def answered(self) -> None:
        if self._done:
            return
        self._done = True
        IN_FLIGHT.dec()
        if self._status is None:  # the client left before any answer: nothing was
            return  # answered, nothing is timed
        seconds = time.perf_counter() - self._began
        route = self._route
        _duration(self._method, route).observe(seconds)
        access_log.info(
            "%s %s %d %.1f ms",
            self._method,
            route,
            self._status,
            seconds * 1000,
            extra={
                "method": self._method,
                "route": route,
                "status": self._status,
                "duration_ms": round(seconds * 1000, 3),
            },
        )

    def _route_of_request(self) -> str:
        route = self._scope.get("route") or next(
            (r for r in self._routes if r.matches(self._scope)[0] is not Match.NONE), None
        )
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED

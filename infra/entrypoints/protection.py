"""The HTTP app's protection, in the order a request meets it:

1. the client's address and scheme: from ``X-Forwarded-For`` / ``-Proto`` only when
   the peer is one of ``SHOP_TRUSTED_PROXIES``, the rightmost untrusted hop being the
   client (uvicorn's ``ProxyHeadersMiddleware``, here so that the app decides however
   it is served; ``shop`` runs uvicorn with its own turned off);
2. the answer's security headers (``response_edge``), on every answer below;
3. CORS for ``SHOP_CORS_ORIGINS`` (Starlette's), before the limits so that a
   browser can read a 429;
4. the route families' rate limits (``route_limits``);
then the request edge (``request_edge``) and the routes.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from infra.entrypoints.response_edge import ResponseEdge
from infra.entrypoints.route_limits import RouteLimits
from infra.wiring.process import Container

CORS_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"]
CORS_HEADERS += ["X-Cart-Token", "X-Consistency-Token", "If-None-Match"]
CORS_EXPOSED = ["Retry-After", "X-Consistency-Token", "X-Trace-Id", "RateLimit", "RateLimit-Policy"]
CORS_EXPOSED += ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "ETag"]


def install(app: FastAPI, container: Container) -> None:
    """Registered innermost first (Starlette wraps each added middleware around the
    ones before it); the request edge must already be registered."""
    settings = container.settings
    app.add_middleware(
        RouteLimits,
        limiter=container.route_limiter,
        limits={
            "reads": settings.rate_limit_reads,
            "search": settings.rate_limit_search,
            "writes": settings.rate_limit_writes,
            "checkout": settings.rate_limit_checkout,
        },
        window_seconds=settings.rate_limit_window,
        tokens=container.users.tokens,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,  # exact origins only (settings refuse *)
            allow_credentials=True,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
            max_age=600,
        )
    app.add_middleware(ResponseEdge)
    if settings.trusted_proxies:
        trusted = [str(network) for network in settings.trusted_proxies]
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)

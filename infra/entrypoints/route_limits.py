"""Every request counted against the limit of its route family (reads, search, writes,
checkout), per caller: the user of a genuine bearer token, else the client address
(``commands.http.callers.client_address``: the peer, or what a trusted proxy says).
A sliding window of ``SHOP_RATE_LIMIT_WINDOW`` seconds, in Redis when configured (so
every process shares it), else in this process.

Answers of a limited family carry the two fields of the current
draft-ietf-httpapi-ratelimit-headers (10), the policy named after the family:
``RateLimit-Policy: "reads";q=<limit>;w=<window>`` and ``RateLimit:
"reads";r=<remaining>;t=<seconds until one more is admitted>``; and, for clients of
the earlier drafts still common, ``RateLimit-Limit``, ``-Remaining`` and ``-Reset``.
Past the limit, 429 ``rate-limited`` problem+json with ``Retry-After``, and the
request goes no further. Health, metrics and the providers'
webhooks (signed, retried by the provider) are not limited.

The token's signature and expiry are checked here (microseconds, no I/O), its session
by the route: keyed on an unchecked subject, anyone could spend another user's
allowance, or get a fresh one per forged token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commands.errors import RateLimited
from commands.http.callers import client_address
from commands.ports import AsyncRateLimiter, RateCount
from commands.users.tokens import TokenCodec
from domain.errors import AuthenticationRequired
from infra.entrypoints.problems import problem

Family = Literal["reads", "search", "writes", "checkout"]
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_ANY: frozenset[str] = frozenset()
ROUTE_FAMILIES: tuple[tuple[str, frozenset[str], Family | None], ...] = (
    # (path prefix, methods (empty: any), family (None: not limited)); first match wins
    ("/health", _ANY, None),
    ("/metrics", _ANY, None),
    ("/webhooks", _ANY, None),
    ("/search", _READS, "search"),
    ("/checkout", _ANY, "checkout"),
    ("", _READS, "reads"),
    ("", _ANY, "writes"),
)


def family_of(method: str, path: str) -> Family | None:
    for prefix, methods, family in ROUTE_FAMILIES:
        under = not prefix or path == prefix or path.startswith(prefix + "/")
        if under and (not methods or method in methods):
            return family
    raise AssertionError("the table ends with a family for any method")


class RouteLimits:
    def __init__(
        self,
        app: ASGIApp,
        limiter: AsyncRateLimiter,
        limits: Mapping[Family, int],
        window_seconds: int,
        tokens: TokenCodec,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits
        self.window = window_seconds
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (family := family_of(scope["method"], scope["path"])) is None:
            await self.app(scope, receive, send)
            return
        limit = self.limits[family]
        count = await self.limiter.take(f"route:{family}:{self._caller(scope)}", limit, self.window)
        fields = self._fields(family, limit, count)
        if not count.admitted:
            headers = {**fields, "Retry-After": fields["RateLimit-Reset"]}
            detail = "too many requests: wait before trying again"
            refused = problem(RateLimited.status, RateLimited.code, detail, headers)
            await refused(scope, receive, send)
            return
        raw = [(name.lower().encode(), value.encode()) for name, value in fields.items()]

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *raw]
            await send(message)

        await self.app(scope, receive, send_with_fields)

    def _caller(self, scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    try:
                        return f"user:{self.tokens.read_access(token.strip()).user_id}"
                    except AuthenticationRequired:
                        break  # the route answers 401; counted against the address
        return f"address:{client_address(Request(scope))}"

    def _fields(self, family: Family, limit: int, count: RateCount) -> dict[str, str]:
        reset = max(1, math.ceil(count.reset_seconds))
        return {
            "RateLimit-Policy": f'"{family}";q={limit};w={self.window}',
            "RateLimit": f'"{family}";r={count.remaining};t={reset}',
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(count.remaining),
            "RateLimit-Reset": str(reset),
        }

"""What the logs say about the request being served: its id and who sent it.

The request middleware (``request_metrics.ObservedRequests``) puts a fresh
``RequestContext`` in ``CURRENT`` for each request; everything that runs for that
request (dependencies, threadpool endpoints, their loggers) sees the same object,
so the authenticator can note the principal where the middleware reads it."""

from __future__ import annotations

import itertools
import os
import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import Scope

from commands.actors import ActorSource
from commands.http.callers import Authenticate
from domain.access import Principal
from domain.actors import Actor, ActorKind

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""What an incoming id may be (a UUID, a proxy's trace id); anything else is
replaced, so a log line never carries a client's arbitrary text as its id."""


@dataclass
class RequestContext:
    request_id: str
    principal: str | None = None
    """The user id of the bearer token, once authenticated (never the token)."""


CURRENT: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


class _Ids:
    """New request ids: 32 hex digits, a random half drawn once per process and a
    counter. An id must be unique, not unguessable (it is sent back in every answer
    and written in every log line), and ``secrets.token_hex`` per request was a few
    per cent of a cached product page's CPU."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def new(self) -> str:
        if self._pid != os.getpid():  # a forked child draws its own half
            self._pid, self._prefix = os.getpid(), secrets.token_hex(8)
            self._counter = itertools.count()
        return f"{self._prefix}{next(self._counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


_new_id = _Ids().new


def request_id_from(header: bytes | None) -> str:
    """The client's (or proxy's) ``X-Request-ID`` if it is a valid one, else a new id."""
    if header is not None:
        text = header.decode("latin-1")
        if _VALID_REQUEST_ID.fullmatch(text):
            return text
    return _new_id()


def request_actor(context: RequestContext, scope: Scope) -> ActorSource:
    """The actor of the events this request's commands save: read at each save, so
    once authenticated (the principal noted) and once the trusted proxies' headers
    have rewritten the client (``ProxyHeadersMiddleware`` sets ``scope["client"]`` in
    place, inside the middleware that calls this)."""

    def actor() -> Actor:
        client = scope.get("client")
        return Actor(
            ActorKind.USER,
            context.principal,
            context.request_id,
            str(client[0]) if client else None,
        )

    return actor


def noting_principal(authenticate: Authenticate) -> Authenticate:
    """``authenticate``, noting the principal it answers in the request's context."""

    async def noted(token: str | None) -> Principal:
        principal = await authenticate(token)
        if (context := CURRENT.get()) is not None:
            context.principal = str(principal.user_id)
        return principal

    return noted

"""HTTP caching of the catalog's public reads (RFC 9110 sections 8.8.3 and 13, RFC
9111): a validator (``ETag``) on each answer, ``If-None-Match`` answered ``304 Not
Modified`` without a body, and ``Cache-Control`` saying how long anyone may keep it.

Only anonymous answers. A request that carries a credential (``CREDENTIAL_HEADERS``)
gets no validator and no public caching, and its ``If-None-Match`` is not looked at:
the response edge (``infra.entrypoints.response_edge``, which takes the same list from
here) marks every such answer ``no-store``. The one catalog answer that depends on
who asks is an unpublished product shown to its seller or an admin; telling it apart
from the others would put that rule in every route, while sellers and admins are few,
so their catalog reads are simply never stored. Anonymous answers say
``Vary: Authorization`` so that no cache hands what it stored for an anonymous
request to one with a bearer (a seller asking for a draft must reach us). Behind the
CDN the catalog's paths reach us without any credential (infra/aws/cdn.tf).

Validators are weak (``W/"..."``, compared weakly as If-None-Match must be): a tag
names the state of the read model an answer was made from, not its bytes. Where the
read model knows that state, a 304 is decided before the answer is made:

- product detail: the row's generation and revision (every write of a product row
  takes a new revision, ``projections.catalog.triggers``), from whichever store
  served the body, the Redis entry or the Postgres row;
- listing: the generation and last revision of ``catalog_products``, read *before*
  the page, so that a tag can be older than its body, never newer;
- category tree: the generation and position of ``catalog_categories``, likewise;
- search: a hash of the answer itself, which may come from OpenSearch or the search
  cache, neither of which can name the state it shows.

Every tag also carries a digest of the catalog answers' schemas, so that a release
that changes what an answer looks like changes every tag.

Read-your-writes: a route waits for a consistency token's position before it takes
its validator, so a 304 to a request with a token says that the client's copy
already shows its write. ``Vary: X-Consistency-Token`` keeps a cache from answering
such a request with what it stored for one without (``?after=`` is in the URL, so in
every cache key anyway).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

CREDENTIAL_HEADERS = ("authorization", "x-cart-token")
"""Request headers that make an answer personal (lower case)."""

CATALOG_CACHE_CONTROL = "public, max-age=5, stale-while-revalidate=30"
"""Five seconds fresh: the read models themselves trail the log by the follower's
lag, and the product cache may trail Postgres by up to its five-second state TTL, so
five more seconds of a product page are no new kind of staleness for a shopper, and
nothing a shopper decides on is taken from a page (checkout prices the cart again
and reserves stock itself). At a hot product's rate that already turns all but one
request per CDN edge per five seconds into a hit. Thirty seconds of
stale-while-revalidate: a cache may answer from a copy up to half a minute past
fresh while it revalidates in the background (a 304 at most, usually), so a popular
page never waits on a refetch; past that, a copy is refetched before use."""

VARY = "Authorization, X-Consistency-Token"

IF_NONE_MATCH_PARAMETER: dict[str, Any] = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "ETags the client holds (a list, or *): 304 Not Modified when one is "
    "current. Ignored on a request with a credential",
}
CONDITIONAL_DOCS: dict[str, Any] = {"parameters": [IF_NONE_MATCH_PARAMETER]}
"""A conditional route's ``openapi_extra``."""
NOT_MODIFIED_DOCS: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not Modified: If-None-Match holds the current ETag; no body, "
        "the 200's ETag, Cache-Control and Vary",
    }
}
"""A conditional route's ``responses``."""

_ENTITY_TAG = re.compile(r'\s*(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')


def personal(headers: Headers) -> bool:
    """Whether the request carries a credential: no public caching for its answer."""
    return any(name in headers for name in CREDENTIAL_HEADERS)


def none_match(if_none_match: list[str], etag: str) -> bool:
    """Whether ``If-None-Match`` (each of its header lines) matches ``etag``: ``*``,
    or any listed tag equal to it under the weak comparison (the ``W/`` prefixes
    ignored). A malformed field matches nothing (the full answer is sent)."""
    if not if_none_match:
        return False
    wanted = _opaque(etag)
    for field in if_none_match:
        if field.strip() == "*":
            return True
        position = 0
        while position < len(field):
            found = _ENTITY_TAG.match(field, position)
            if found is None:
                break
            if found[1] == wanted:
                return True
            position = found.end()
    return False


def _opaque(etag: str) -> str:
    return etag.removeprefix("W/").strip('"')


@cache
def _representation(*models: type[BaseModel]) -> str:
    schemas = orjson.dumps([m.model_json_schema() for m in models], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(schemas, digest_size=4).hexdigest()


def etag(kind: str, *state: object, models: tuple[type[BaseModel], ...]) -> str:
    """A weak tag of an answer of ``kind`` made from the read model at ``state``, in
    the representation described by ``models``."""
    return f'W/"{kind}{_representation(*models)}.{".".join(str(part) for part in state)}"'


def body_etag(kind: str, body: bytes) -> str:
    """A weak tag of an answer that no version names: a hash of its bytes."""
    return f'W/"{kind}.{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def caching_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": CATALOG_CACHE_CONTROL, "Vary": VARY}


def not_modified(request: Request, etag: str) -> Response | None:
    """``304 Not Modified`` with the headers a 200 would carry, if ``etag`` matches
    the request's ``If-None-Match``; None: answer in full (``answer``). A personal
    request is always answered in full."""
    headers = request.headers
    if personal(headers) or not none_match(headers.getlist("if-none-match"), etag):
        return None
    return Response(status_code=304, headers=caching_headers(etag))


def answer(request: Request, body: bytes, etag: str | Callable[[bytes], str] | None) -> Response:
    """The JSON ``body``, or 304 if the request already holds it: ``full`` then
    ``revalidated``."""
    return revalidated(request, full(request, body, etag))


def full(request: Request, body: bytes, etag: str | Callable[[bytes], str] | None) -> Response:
    """The JSON ``body`` with its caching headers: ``etag``, or how to make it from the
    body. A personal request (or no ``etag``: a route skips taking one for a personal
    request) gets no caching headers (the response edge adds ``no-store``)."""
    if etag is None or personal(request.headers):
        return Response(body, media_type="application/json")
    tag = etag if isinstance(etag, str) else etag(body)
    return Response(body, media_type="application/json", headers=caching_headers(tag))


def revalidated(request: Request, response: Response) -> Response:
    """``response``, or 304 in its place if it is a 200 whose ETag the request holds."""
    tag = response.headers.get("etag")
    if response.status_code != 200 or tag is None:
        return response
    return not_modified(request, tag) or response

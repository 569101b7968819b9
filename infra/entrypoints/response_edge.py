"""The headers every answer leaves with (the request edge's counterpart for output).
A header a route set itself is kept (the mailed links' pages have their own
Content-Security-Policy, allowing their one inline style).

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.
- ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'``: nothing an
  answer says may load or frame anything. Not on the OpenAPI pages (``/docs``,
  ``/redoc``), whose scripts come from a CDN: they get ``frame-ancestors`` only.
- ``Strict-Transport-Security`` when the request came over TLS: its scheme is https,
  directly or as a trusted proxy's ``X-Forwarded-Proto`` says (``protection.py``).
- ``Cache-Control: no-store`` on personal answers: to a request carrying a
  credential (``Authorization``, ``X-Cart-Token``), and under ``/auth``, ``/cart`` and
  ``/checkout``, which answer tokens (access and refresh tokens, a guest's new cart
  token) to requests that carry none. Public reads stay cacheable: the catalog's
  say for how long themselves (``read_api.http_caching``, which holds the list of
  credential headers).
- ``X-Trace-Id``: the request's trace (32 hex digits), when it is traced
  (``SHOP_OTEL_EXPORTER``), so that a client's report leads to its spans and logs.
"""

from __future__ import annotations

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from read_api.http_caching import CREDENTIAL_HEADERS

HSTS = "max-age=31536000; includeSubDomains"
CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = "frame-ancestors 'none'"
_DOCS = ("/docs", "/redoc")
_PERSONAL_PATHS = ("/auth", "/cart", "/checkout")
_CREDENTIALS = frozenset(name.encode() for name in CREDENTIAL_HEADERS)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]


# Every answer's headers, encoded once (the combinations are few).
_BASE = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_ADDED: dict[tuple[bool, bool, bool], list[tuple[bytes, bytes]]] = {
    (docs, https, personal): _raw(
        {
            **_BASE,
            "Content-Security-Policy": DOCS_CSP if docs else CSP,
            **({"Strict-Transport-Security": HSTS} if https else {}),
            **({"Cache-Control": "no-store"} if personal else {}),
        }
    )
    for docs in (False, True)
    for https in (False, True)
    for personal in (False, True)
}


class ResponseEdge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        personal = _under(path, _PERSONAL_PATHS) or any(
            name in _CREDENTIALS for name, _ in scope["headers"]
        )
        added = _ADDED[_under(path, _DOCS), scope["scheme"] == "https", personal]
        # FastAPI's request span is current here: it wraps every middleware.
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            added = [*added, (b"x-trace-id", format(span_context.trace_id, "032x").encode())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [header for header in added if header[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

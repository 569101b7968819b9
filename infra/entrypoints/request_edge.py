"""The edge every HTTP request passes before the app sees it: one place for the rules
on what may come in.

- Size: a body over ``max_bytes`` is refused with 413 ``body-too-large``, by its
  Content-Length or, chunked, as it arrives.
- Text: the path, every query parameter and header value, every string and key of
  a JSON body and every field of a form body are checked with the text rule
  (``domain.text``): a control character answers 422 ``validation-failed`` naming
  where, in the shape of FastAPI's validation errors, never echoing the value.
- Parsing: a JSON body (or one without a content type) is parsed once, bounded
  (``infra.entrypoints.bounded_json``); not JSON is 400 ``malformed-json``, nested deeper than
  ``max_depth`` 400 ``malformed-body``. The value is left in the scope for
  ``ParsedBodyRoute``; the app is handed the original bytes.
- Card data: a card number or security code in the body or the query string is
  refused with 422 ``card-data-refused`` naming where (never what): clients pay
  with gateway tokens (PCI DSS SAQ-A).

Provider callbacks (``/webhooks/``) are signed by the provider, not client input,
and must reach their handler as sent: their bodies are bounded but not screened.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commands.card_data import contains_card_number, find_card_data, is_security_code_key
from commands.http.parsed_body import PARSED_JSON
from domain.text import forbidden_at, header_forbidden_at
from infra.entrypoints.bounded_json import MalformedJson, ParsedJson, TooDeep, parse_json
from infra.entrypoints.problems import problem

MAX_DEPTH = 32
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_UNSCREENED = "/webhooks/"
_FORM = b"application/x-www-form-urlencoded"


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class RequestEdge:
    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = MAX_DEPTH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            app_receive = await self._screen(scope, receive)
        except _Refused as refused:
            await refused.response(scope, receive, send)
            return
        if app_receive is not None:  # None: the client left while sending the body
            await self.app(scope, app_receive, send)

    async def _screen(self, scope: Scope, receive: Receive) -> Receive | None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        # One search over every value (a few µs per request saved on the hot GETs).
        if header_forbidden_at(b"\t".join([value for _, value in headers])) is not None:
            raise _Refused(_header_refused(headers))
        length: bytes | None = None
        content_type: bytes | None = None
        chunked = False
        for name, value in headers:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"transfer-encoding":
                chunked = True
        path: str = scope["path"]
        if (at := forbidden_at(path)) is not None:
            raise _Refused(_control_character(["path"], ord(path[at])))
        screened = not path.startswith(_UNSCREENED)
        if scope["query_string"]:
            _screen_fields("query", scope["query_string"].decode("latin-1"), cards=screened)
        if not chunked and length in (None, b"0") and scope["method"] not in _BODY_METHODS:
            return receive
        body = await self._read(receive, length)
        if body is None:
            return None
        if body:
            self._screen_body(scope, body, content_type, screened)
        return _replay(body, receive)

    async def _read(self, receive: Receive, length: bytes | None) -> bytes | None:
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            raise _Refused(self._too_large())
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:  # chunked: no length declared, counted as it comes
                raise _Refused(self._too_large())
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> Response:
        return problem(413, "body-too-large", f"the body is over {self.max_bytes} bytes")

    def _screen_body(
        self, scope: Scope, body: bytes, content_type: bytes | None, screened: bool
    ) -> None:
        mime = (content_type or b"").partition(b";")[0].strip().lower()
        if not mime or mime == b"application/json" or _is_json_subtype(mime):
            parsed = self._parse_json(body)
            scope[PARSED_JSON] = parsed.value
            if not screened:
                return
            if (forbidden := parsed.forbidden) is not None:
                where = ["body", *forbidden.location]
                raise _Refused(_control_character(where, ord(forbidden.character)))
            _refuse_card_data(find_card_data(parsed.value))
        elif not screened:
            return
        elif mime == _FORM:
            _screen_fields("body", body.decode("utf-8", "replace"), cards=True)
        elif contains_card_number(body.decode("utf-8", "replace")):
            _refuse_card_data(["body"])

    def _parse_json(self, body: bytes) -> ParsedJson:
        try:
            return parse_json(body, self.max_depth)
        except MalformedJson:
            detail = "the request body is not valid JSON"
            raise _Refused(problem(400, "malformed-json", detail)) from None
        except TooDeep:
            detail = f"the request body nests deeper than {self.max_depth} levels"
            raise _Refused(problem(400, "malformed-body", detail)) from None


def _is_json_subtype(mime: bytes) -> bool:
    return mime.startswith(b"application/") and mime.endswith(b"+json")


def _screen_fields(where: str, encoded: str, *, cards: bool) -> None:
    """Query parameters or a form body, parsed as Starlette parses them."""
    pairs = parse_qsl(encoded, keep_blank_values=True)
    for name, value in pairs:
        if (at := forbidden_at(name)) is not None:
            raise _Refused(_control_character([where], ord(name[at])))
        if (at := forbidden_at(value)) is not None:
            raise _Refused(_control_character([where, name], ord(value[at])))
    if cards:
        found = [
            name
            for name, value in pairs
            if is_security_code_key(name) or contains_card_number(value)
        ]
        _refuse_card_data([f"{where} {name}" for name in found])


def _header_refused(headers: list[tuple[bytes, bytes]]) -> Response:
    name, value, at = next(
        (name, value, at)
        for name, value in headers
        if (at := header_forbidden_at(value)) is not None
    )
    return _control_character(["header", name.decode("latin-1")], value[at])


def _control_character(location: list[Any], code_point: int) -> Response:
    error = {
        "location": location,
        "message": f"control characters are not accepted (found U+{code_point:04X})",
        "type": "control_character",
    }
    return problem(422, "validation-failed", "the request is not valid", errors=[error])


def _refuse_card_data(where: list[str]) -> None:
    if where:
        raise _Refused(
            problem(
                422,
                "card-data-refused",
                "card numbers and security codes are never accepted: pay with a payment "
                f"method token from the payment provider (found at {', '.join(where[:5])})",
            )
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, read here, handed on whole; then the client's own messages
    (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay

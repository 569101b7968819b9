"""The request edge, driven as ASGI around a tiny app: what it refuses, with which
problem, and what the app receives (the original bytes, the body parsed once with
exact numbers)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

import pytest
from fastapi import APIRouter, Body, FastAPI, Request
from hypothesis import given
from hypothesis import strategies as st

from commands.http.parsed_body import ExponentDecimal, ParsedBodyRoute
from infra.entrypoints.http import READ_ROUTERS, WRITE_ROUTERS
from infra.entrypoints.mailbox_api import router as mailbox_router
from infra.entrypoints.request_edge import RequestEdge
from infra.entrypoints.sandbox_api import router as sandbox_router
from tests.unit.test_text import FORBIDDEN

MAX_BYTES = 64 * 1024
PAN = "4242 4242 4242 4242"
JSON = [(b"content-type", b"application/json")]

router = APIRouter(route_class=ParsedBodyRoute)
received: list[Any] = []


@router.post("/echo")
def echo(body: Annotated[Any, Body()]) -> dict[str, str]:
    received.append(body)
    return {"ok": "yes"}


@router.get("/items")
def items(q: str = "") -> dict[str, str]:
    return {"q": q}


@router.post("/webhooks/provider")
@router.post("/raw")
async def raw(request: Request) -> dict[str, int]:
    received.append(await request.body())
    return {"bytes": len(received[-1])}


app = FastAPI()
app.include_router(router)
edge = RequestEdge(app, max_bytes=MAX_BYTES)


@dataclass
class Answer:
    status: int
    body: bytes

    @property
    def problem(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def code(self) -> str:
        return str(self.problem["type"]).rsplit("/", 1)[-1]


def call(
    method: str,
    path: str,
    *,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: list[bytes] | None = None,
    declare_length: bool = True,
) -> Answer:
    """One request through the edge; the body in ``chunks`` (chunked when its length
    is not declared)."""
    chunks = chunks if chunks is not None else []
    all_headers = list(headers or [])
    if declare_length and chunks:
        all_headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    elif chunks:
        all_headers.append((b"transfer-encoding", b"chunked"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": all_headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks or [b""])
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # a client that stays: never a second body
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(edge(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], body)


def post_json(body: bytes | str, path: str = "/echo") -> Answer:
    raw = body.encode() if isinstance(body, str) else body
    return call("POST", path, headers=JSON, chunks=[raw])


def refused_text(answer: Answer, location: list[Any]) -> None:
    assert answer.status == 422, answer.body
    assert answer.code == "validation-failed"
    [error] = answer.problem["errors"]
    assert error["location"] == location
    assert error["type"] == "control_character"


# --- text --------------------------------------------------------------------------


# Lone surrogates are not JSON (orjson refuses them): malformed-json, tested below.
ENCODABLE = [c for c in FORBIDDEN if not "\ud800" <= c <= "\udfff"]


@given(st.sampled_from(ENCODABLE), st.sampled_from(["name", "addresses"]))
def test_control_characters_in_a_json_body_are_refused_naming_the_field(
    character: str, field: str
) -> None:
    body = {"name": "Eve", "addresses": [{"line1": "1 A St", "city": "B"}]}
    if field == "name":
        body["name"] = f"Ev{character}e"
        location: list[Any] = ["body", "name"]
    else:
        body["addresses"] = [{"line1": "1 A St", "city": f"B{character}"}]
        location = ["body", "addresses", 0, "city"]
    answer = post_json(json.dumps(body))
    refused_text(answer, location)
    assert character.encode() not in answer.body
    assert "\\u" not in answer.body.decode()  # the value is not echoed, escaped either


def test_a_control_character_in_a_key_names_the_object_holding_it() -> None:
    refused_text(post_json('{"a": [{"b\\u0001": 1}]}'), ["body", "a", 0])
    refused_text(post_json('"top\\u0000"'), ["body"])


def test_text_that_needs_tabs_and_line_breaks_passes() -> None:
    received.clear()
    assert post_json(json.dumps({"body": "one\ntwo\r\n\tthree é"})).status == 200
    assert received == [{"body": "one\ntwo\r\n\tthree é"}]


def test_control_characters_in_the_query_path_and_headers_are_refused() -> None:
    refused_text(call("GET", "/items", query=b"q=a%00b"), ["query", "q"])
    refused_text(call("GET", "/items", query=b"q=%C2%85"), ["query", "q"])
    refused_text(call("GET", "/items", query=b"a%01=x"), ["query"])
    refused_text(call("GET", "/items\x00"), ["path"])
    refused_text(call("GET", "/items", headers=[(b"x-note", b"a\x01b")]), ["header", "x-note"])
    assert call("GET", "/items", query=b"q=caf%C3%A9&empty=").status == 200
    assert call("GET", "/items", headers=[(b"x-note", b"caf\xe9\tok")]).status == 200


def test_control_characters_in_a_form_body_are_refused() -> None:
    form = [(b"content-type", b"application/x-www-form-urlencoded")]
    answer = call("POST", "/raw", headers=form, chunks=[b"token=abc&password=x%00y"])
    refused_text(answer, ["body", "password"])
    received.clear()
    assert call("POST", "/raw", headers=form, chunks=[b"password=caf%C3%A9"]).status == 200
    assert received == [b"password=caf%C3%A9"]


# --- bounded parsing ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "[" * 2_000,
        "[" * 2_000 + "]" * 2_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        "[" * 33 + "]" * 33,
        json.dumps(
            {
                "address": {
                    "a": {"b": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
                }
            }
        ),
    ],
    ids=["2000 open", "2000 nested arrays", "10000 nested objects", "33 levels", "deep inside"],
)
def test_deep_bodies_are_a_malformed_body(body: str) -> None:
    answer = post_json(body)
    assert answer.status == 400, answer.body
    assert answer.code == "malformed-body"


def test_32_levels_pass_and_wide_bodies_pass() -> None:
    assert post_json("[" * 32 + "]" * 32).status == 200
    assert post_json(json.dumps([0] * 20_000, separators=(",", ":"))).status == 200
    assert post_json(json.dumps({"text": "x" * 60_000})).status == 200


@pytest.mark.parametrize(
    "body",
    [b'{"a": 1', b'{"a": NaN}', b'{"a": Infinity}', b'"\\ud800"', b'{"a": "\xff"}', b"[1,]"],
)
def test_what_is_not_json_is_malformed_json(body: bytes) -> None:
    answer = post_json(body)
    assert answer.status == 400, answer.body
    assert answer.code == "malformed-json"


def test_numbers_reach_the_app_exactly_never_as_floats() -> None:
    received.clear()
    post_json(b'{"price": 19.99, "big": 123456789012345678901234567890, "n": 5, "e": 1e400}')
    [body] = received
    assert body["price"] == Decimal("19.99") and type(body["price"]) is Decimal
    assert body["big"] == 123456789012345678901234567890
    assert body["n"] == 5 and isinstance(body["n"], int)
    assert isinstance(body["e"], ExponentDecimal)


def test_the_app_gets_the_original_bytes() -> None:
    received.clear()
    raw = b'{ "b": 1,   "a": "\\u00e9" }'
    call("POST", "/raw", headers=JSON, chunks=[raw[:5], raw[5:]], declare_length=False)
    assert received == [raw]


def test_bodies_over_the_limit_are_413_declared_or_chunked() -> None:
    big = b'"' + b"x" * MAX_BYTES + b'"'
    assert call("POST", "/echo", headers=JSON, chunks=[big]).code == "body-too-large"
    chunked = call(
        "POST", "/echo", headers=JSON, chunks=[big[:1000], big[1000:]], declare_length=False
    )
    assert chunked.status == 413
    assert chunked.code == "body-too-large"


def test_a_body_that_is_not_json_is_handed_on_unparsed() -> None:
    received.clear()
    answer = call("POST", "/echo", headers=[(b"content-type", b"text/plain")], chunks=[b"{oops"])
    assert answer.status == 200
    assert received == [b"{oops"]


# --- card data ----------------------------------------------------------------------


def test_card_data_anywhere_is_refused_without_echo() -> None:
    for body in (
        {"description": f"pay me with {PAN}"},
        {"lines": [{"note": "4000000000000002"}]},
        {"payment": {"cvc": "123"}},
        {"n": 4000000000000002},
    ):
        answer = post_json(json.dumps(body))
        assert answer.status == 422, body
        assert answer.code == "card-data-refused"
        assert b"4242" not in answer.body and b"4000000000000002" not in answer.body
    for query in (b"q=4242424242424242", b"q=4242-4242-4242-4242", b"cvv=123"):
        assert call("GET", "/items", query=query).code == "card-data-refused"
    form = [(b"content-type", b"application/x-www-form-urlencoded")]
    assert call("POST", "/raw", headers=form, chunks=[b"n=4242424242424242"]).status == 422
    text = [(b"content-type", b"text/plain")]
    assert call("POST", "/raw", headers=text, chunks=[PAN.encode()]).status == 422


def test_provider_callbacks_reach_their_handler_byte_for_byte() -> None:
    received.clear()
    raw = json.dumps({"card": {"last4": PAN, "name": "Ev\x00e"}}).encode()
    assert call("POST", "/webhooks/provider", headers=JSON, chunks=[raw]).status == 200
    assert received == [raw]
    assert post_json("[" * 2_000, path="/webhooks/provider").code == "malformed-body"


# --- the route class, and cost ------------------------------------------------------


def test_every_router_of_the_app_uses_the_parsed_body_route() -> None:
    routers = [*READ_ROUTERS, *WRITE_ROUTERS, sandbox_router, mailbox_router]
    routes = [route for r in routers for route in r.routes]
    assert routes
    for route in routes:
        assert isinstance(route, ParsedBodyRoute), getattr(route, "path", route)


def test_a_plain_get_costs_microseconds() -> None:
    """The hot path: GET /products/{id} with a few headers and no query."""

    async def nothing(scope: Any, receive: Any, send: Any) -> None:
        return None

    bare = RequestEdge(nothing, max_bytes=MAX_BYTES)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/products/6f1c2a43-5a1e-4c57-9d55-1e8f7c2a9b10",
        "query_string": b"",
        "headers": [
            (b"host", b"shop.example"),
            (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"),
            (b"accept", b"application/json"),
            (b"authorization", b"Bearer " + b"x" * 200),
        ],
    }

    async def run(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await bare(scope, None, None)  # type: ignore[arg-type]
        return (time.perf_counter() - started) / n

    per_request = min(asyncio.run(run(5_000)) for _ in range(3))
    assert per_request < 20e-6, f"{per_request * 1e6:.1f} µs"


def test_every_forbidden_character_is_refused_in_a_query_value() -> None:
    for character in ENCODABLE:
        query = f"q={quote(character)}".encode()
        refused_text(call("GET", "/items", query=query), ["query", "q"])

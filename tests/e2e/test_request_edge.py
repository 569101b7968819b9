"""The request edge over HTTP, route by route from the app's own OpenAPI: control
characters in any string field, query parameter or header are refused with a 422
naming the field; deep, wide and long bodies never cause a 5xx, and deep ones are
400 ``malformed-body`` everywhere; card data is refused on every route, not just
ordering's. A refused request writes no event."""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import problem_type, refused, written
from tests.support.catalog_client import Cast, product_body
from tests.support.server import Server
from tests.support.side_door import nothing_written
from tests.support.users_client import STRONG_PASSWORD, unique_email

pytestmark = pytest.mark.e2e

PAN = "4242 4242 4242 4242"
METHODS = ("get", "post", "put", "patch", "delete")
Location = tuple[str | int, ...]

# The characters no text field accepts that JSON can carry (lone surrogates are not
# JSON at all: malformed-json).
FORBIDDEN = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), 0xFFFE, 0xFFFF)]
FORBIDDEN = [c for c in FORBIDDEN if c not in "\t\n\r"]
forbidden_values = st.builds(
    lambda before, character, after: before + character + after,
    st.text("abc xyz", max_size=5),
    st.sampled_from(FORBIDDEN),
    st.text("abc xyz", max_size=5),
)


# --- the OpenAPI, walked ---------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(server: Server) -> dict[str, Any]:
    with server.client() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def concrete(path: str) -> str:
    """A path with its parameters filled: a UUID fits every id, and SKUs and tokens
    take any short text."""
    parts = [str(uuid.uuid4()) if p.startswith("{") else p for p in path.split("/")]
    return "/".join(parts)


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def string_fields(
    spec: dict[str, Any],
    schema: dict[str, Any],
    at: Location = (),
    seen: frozenset[str] = frozenset(),
) -> Iterator[Location]:
    """The location of every string in ``schema``: properties, array items (at
    index 0), additional properties (at key ``k``), alternatives."""
    ref = schema.get("$ref")
    if ref in seen:
        return
    seen = seen | {ref} if ref else seen
    schema = resolve(spec, schema)
    for alternative in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from string_fields(spec, alternative, at, seen)
    kind = schema.get("type")
    if kind == "string":
        yield at
    for name, field in schema.get("properties", {}).items():
        yield from string_fields(spec, field, (*at, name), seen)
    if isinstance(schema.get("items"), dict):
        yield from string_fields(spec, schema["items"], (*at, 0), seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from string_fields(spec, schema["additionalProperties"], (*at, "k"), seen)


def body_holding(location: Location, value: str) -> Any:
    """The smallest body with ``value`` at ``location``: the edge looks before any
    model does, so nothing else is needed."""
    body: Any = value
    for step in reversed(location):
        body = [body] if isinstance(step, int) else {step: body}
    return body


def json_body_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    return schema if isinstance(schema, dict) else None


def deduplicated(locations: Iterator[Location]) -> list[Location]:
    return list(dict.fromkeys(locations))


# --- class 1: text at the edge ---------------------------------------------------------


def test_the_openapi_has_string_fields_to_try(openapi: dict[str, Any]) -> None:
    fields = [
        field
        for _, _, operation in operations(openapi)
        if (schema := json_body_schema(operation)) is not None
        for field in string_fields(openapi, schema)
    ]
    assert len(fields) > 40  # the walk reaches nested models, lists and maps
    assert ("addresses", 0, "line1") in fields
    assert ("shipping_address", "k") in fields


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_control_characters_are_refused_in_every_string_field_of_every_body(
    server: Server, client: httpx.Client, openapi: dict[str, Any], data: st.DataObject
) -> None:
    headers = server.admin_headers(client)
    with nothing_written(server):
        for method, path, operation in operations(openapi):
            schema = json_body_schema(operation)
            if schema is None:
                continue
            for field in deduplicated(string_fields(openapi, schema)):
                value = data.draw(forbidden_values)
                body = json.dumps(body_holding(field, value))
                response = client.request(
                    method,
                    concrete(path),
                    content=body,
                    headers={**headers, "content-type": "application/json"},
                )
                problem = refused(response, 422, "validation-failed")
                [error] = problem["errors"]
                assert error["location"] == ["body", *field], (method, path, field)
                assert error["type"] == "control_character"
                assert json.dumps(value)[1:-1] not in response.text


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_control_characters_are_refused_in_every_query_parameter(
    server: Server, client: httpx.Client, openapi: dict[str, Any], data: st.DataObject
) -> None:
    headers = server.admin_headers(client)
    tried = 0
    for method, path, operation in operations(openapi):
        if method != "get":
            continue
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            name = parameter["name"]
            response = client.get(
                concrete(path), params={name: data.draw(forbidden_values)}, headers=headers
            )
            problem = refused(response, 422, "validation-failed")
            assert problem["errors"][0]["location"] == ["query", name], (path, name)
            tried += 1
    assert tried > 20


def test_a_control_character_in_a_header_is_refused(server: Server) -> None:
    """httpx will not send one: a raw request."""
    address = urlsplit(server.base_url)
    assert address.hostname is not None and address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            b"GET /products HTTP/1.1\r\nHost: shop\r\nX-Note: a\x01b\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 422), answer  # the HTTP server itself may refuse it first
    if status == 422:
        assert b'"location":["header","x-note"]' in answer


def test_a_name_with_nul_is_refused_at_registration_and_in_the_profile(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    """Issue 13, D1: these answered 201 and 200, and the projections then failed on
    the stored event forever."""
    address = {"line1": "1 A\x00 St", "city": "B", "postal_code": "1", "country": "GB"}
    with nothing_written(server):
        registered = client.post(
            "/auth/register",
            json={"email": unique_email("nul"), "password": STRONG_PASSWORD, "name": "Ev\x00e"},
        )
        assert refused(registered, 422, "validation-failed")["errors"][0]["location"] == [
            "body",
            "name",
        ]
        me = cast.customer.headers
        refused(
            client.patch("/users/me", json={"name": "Ev\x00e"}, headers=me),
            422,
            "validation-failed",
        )
        line = client.patch("/users/me", json={"addresses": [address]}, headers=me)
        body = refused(line, 422, "validation-failed")
        assert body["errors"][0]["location"] == ["body", "addresses", 0, "line1"]


# --- class 5: bounded parsing ----------------------------------------------------------

DEEP_BODIES = {
    "2000 open arrays": "[" * 2_000,
    "10000 nested objects": '{"a":' * 10_000 + "1" + "}" * 10_000,
}
BIG_BODIES = {
    "20000 elements": json.dumps([0] * 20_000, separators=(",", ":")),
    "a 60 KB string": json.dumps({"text": "x" * 60_000}),
}


def test_deep_wide_and_long_bodies_never_answer_5xx_on_any_route(
    server: Server, client: httpx.Client, openapi: dict[str, Any]
) -> None:
    """Anonymous: no route may act on these (a body-less POST with a token would)."""
    json_type = {"content-type": "application/json"}
    with nothing_written(server):
        for method, path, operation in operations(openapi):
            url = concrete(path)
            for name, body in DEEP_BODIES.items():
                response = client.request(method, url, content=body, headers=json_type)
                assert response.status_code < 500, (method, path, name, response.text)
                if "requestBody" in operation:
                    assert response.status_code == 400, (method, path, name)
                    assert problem_type(response) == "malformed-body"
            for name, body in BIG_BODIES.items():
                response = client.request(method, url, content=body, headers=json_type)
                assert response.status_code < 500, (method, path, name, response.text)


def test_the_d4_requests_answer_400(server: Server, client: httpx.Client) -> None:
    """Issue 13, D4: these answered 500 (a RecursionError in the card-data guard)."""
    json_type = {"content-type": "application/json"}
    with nothing_written(server):
        cart = client.post("/cart/lines", content="[" * 2_000, headers=json_type)
        refused(cart, 400, "malformed-body")
        address = '{"a":' * 10_000 + '"x"' + "}" * 10_000
        deep = f'{{"shipping_address": {address}, "payment_method": "pm_card_visa"}}'
        refused(client.post("/checkout", content=deep, headers=json_type), 400, "malformed-body")


# --- class 7: card data on every route -------------------------------------------------


def test_card_data_is_refused_in_products_reviews_and_queries(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    product_id = written(
        client.post("/products", json=product_body(), headers=cast.seller.headers), 201
    )
    with nothing_written(server):
        described = client.post(
            "/products",
            json=product_body(description=f"Pay by card: {PAN}"),
            headers=cast.seller.headers,
        )
        refused(described, 422, "card-data-refused")
        patched = client.patch(
            f"/products/{product_id}",
            json={"description": "card 4000-0000-0000-0002"},
            headers=cast.seller.headers,
        )
        refused(patched, 422, "card-data-refused")
        review = client.post(
            f"/products/{product_id}/reviews",
            json={"rating": 5, "title": "Great", "body": f"paid with {PAN}, cvc 123"},
            headers=cast.customer.headers,
        )
        refused(review, 422, "card-data-refused")
        searched = client.get("/search", params={"q": "4242424242424242"})
        refused(searched, 422, "card-data-refused")
        for response in (described, patched, review, searched):
            assert "4242" not in response.text and "4000" not in response.text
    assert PAN not in server.log_path.read_text()


def test_skus_and_ids_are_not_taken_for_card_numbers(client: httpx.Client, cast: Cast) -> None:
    """A 13-digit EAN barcode as a SKU, which Luhn alone refused 1 time in 10."""
    for ean in ("4006381333931", "5901234123457", "9780201379624", "4242424242424"):
        response = client.post("/products", json=product_body(sku=ean), headers=cast.seller.headers)
        written(response, 201)


def test_an_idle_connection_outlives_a_shoppers_pause(server: Server) -> None:
    """uvicorn's default keep-alive (5 s) is shorter than a pause between two pages:
    the server keeps an idle connection open for ``SHOP_KEEP_ALIVE_SECONDS`` (75)."""
    url = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        conn.request("GET", "/health/live")
        assert conn.getresponse().read() == b'{"status":"alive"}'
        first = conn.sock
        time.sleep(7.0)
        conn.request("GET", "/health/live")  # a closed one: RemoteDisconnected
        assert conn.getresponse().status == 200
        assert conn.sock is first
    finally:
        conn.close()

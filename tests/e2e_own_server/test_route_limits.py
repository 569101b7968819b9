"""A ``shop run`` behind a trusted proxy (127.0.0.1, as the ALB is in production),
its limits in Redis, lowered so that a test reaches them, and one CORS origin: the
route families' limits and their fields, who is counted, CORS, and the headers
every answer carries.

Each test speaks as client addresses of its own (``X-Forwarded-For``, believed from
the trusted proxy), so no test (nor anyone else's server on the same Redis) spends
another's allowance.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest

from tests.support.api import bearer, refused
from tests.support.server import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Server,
    free_port,
    launch,
    running_server,
    stop,
)

pytestmark = pytest.mark.e2e

WINDOW = 600
LIMITS = {"reads": 6, "search": 3, "writes": 4, "checkout": 2}
ORIGIN = "https://shop.example.com"
FOREIGN = "https://evil.example"
CSP = "default-src 'none'; frame-ancestors 'none'"


@pytest.fixture(scope="module")
def server(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Server]:
    settings = {
        "SHOP_REDIS_URL": redis_url,
        "SHOP_TRUSTED_PROXIES": "127.0.0.1, ::1",
        "SHOP_CORS_ORIGINS": ORIGIN,
        "SHOP_RATE_LIMIT_WINDOW": str(WINDOW),
        **{f"SHOP_RATE_LIMIT_{family.upper()}": str(n) for family, n in LIMITS.items()},
    }
    with running_server(make_database(), tmp_path_factory.mktemp("limits"), settings) as s:
        yield s


def new_address() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"


def client_at(server: Server, address: str | None = None) -> httpx.Client:
    """A client the trusted proxy forwards for, from ``address`` (a new one by default)."""
    return httpx.Client(
        base_url=server.base_url,
        timeout=30.0,
        headers={"X-Forwarded-For": address or new_address()},
    )


REQUESTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "reads": ("GET", "/categories", {}),
    "search": ("GET", "/search", {"params": {"q": "lamp"}}),
    "writes": ("POST", "/cart/lines", {"json": {}}),
    "checkout": ("POST", "/checkout", {"json": {}}),
}


def send(client: httpx.Client, family: str, **extra: Any) -> httpx.Response:
    method, path, options = REQUESTS[family]
    return client.request(method, path, **options, **extra)


def exhaust(client: httpx.Client, family: str, **extra: Any) -> None:
    for _ in range(LIMITS[family]):
        assert send(client, family, **extra).status_code != 429


def assert_limited(answer: httpx.Response, limit: int) -> None:
    body = refused(answer, 429, "rate-limited")
    assert "wait" in body["detail"]
    assert answer.headers["RateLimit-Remaining"] == "0"
    assert answer.headers["RateLimit-Limit"] == str(limit)
    assert 1 <= int(answer.headers["Retry-After"]) <= WINDOW
    assert answer.headers["Retry-After"] == answer.headers["RateLimit-Reset"]
    assert ";r=0;" in answer.headers["RateLimit"]


@pytest.mark.parametrize("family", list(LIMITS))
def test_each_route_family_is_limited_and_says_so(server: Server, family: str) -> None:
    limit = LIMITS[family]
    with client_at(server) as client:
        answers = [send(client, family) for _ in range(limit + 2)]
    for answer, remaining in zip(answers, reversed(range(limit)), strict=False):
        assert answer.status_code != 429, answer.text
        assert answer.headers["RateLimit-Limit"] == str(limit)
        assert answer.headers["RateLimit-Remaining"] == str(remaining)
        reset = answer.headers["RateLimit-Reset"]
        assert 1 <= int(reset) <= WINDOW
        assert answer.headers["RateLimit-Policy"] == f'"{family}";q={limit};w={WINDOW}'
        assert answer.headers["RateLimit"] == f'"{family}";r={remaining};t={reset}'
    for answer in answers[limit:]:
        assert_limited(answer, limit)
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_families_are_counted_apart(server: Server) -> None:
    with client_at(server) as client:
        exhaust(client, "search")
        assert_limited(send(client, "search"), LIMITS["search"])
        reads = send(client, "reads")
    assert reads.status_code == 200, reads.text
    assert reads.headers["RateLimit-Remaining"] == str(LIMITS["reads"] - 1)


def test_a_trusted_proxy_forwarded_for_names_the_client(server: Server) -> None:
    """The proxy appends the peer it saw: the rightmost address it does not trust is
    the client, whatever the client put before it."""
    spent, fresh = new_address(), new_address()
    with client_at(server, spent) as client:
        exhaust(client, "reads")
        assert_limited(send(client, "reads"), LIMITS["reads"])
    with client_at(server, fresh) as client:
        assert send(client, "reads").status_code == 200
    with client_at(server, f"{fresh}, {spent}") as client:
        assert_limited(send(client, "reads"), LIMITS["reads"])
    with client_at(server, f"{spent}, 127.0.0.1") as client:  # a trusted hop between
        assert_limited(send(client, "reads"), LIMITS["reads"])


def test_a_user_is_counted_apart_from_the_address(server: Server) -> None:
    """With a genuine token the user is counted, from wherever it calls; without it
    (or with a forged one) the address is. (Search: the admin's reads stay for the
    other tests.)"""
    address = new_address()
    with client_at(server, address) as client:
        admin = server.admin_headers(client)
        exhaust(client, "search", headers=admin)
        assert_limited(send(client, "search", headers=admin), LIMITS["search"])
        anonymous = send(client, "search")
    assert anonymous.status_code == 200, anonymous.text
    assert anonymous.headers["RateLimit-Remaining"] == str(LIMITS["search"] - 1)
    with client_at(server) as elsewhere:
        assert_limited(send(elsewhere, "search", headers=admin), LIMITS["search"])


def test_forged_tokens_get_no_allowance_of_their_own(server: Server) -> None:
    with client_at(server) as client:
        answers = [
            send(client, "reads", headers=bearer(forged_token())) for _ in range(LIMITS["reads"])
        ]
        assert [a.headers["RateLimit-Remaining"] for a in answers] == [
            str(n) for n in reversed(range(LIMITS["reads"]))
        ]
        assert_limited(send(client, "reads", headers=bearer(forged_token())), LIMITS["reads"])


def forged_token() -> str:
    """An access token for a made-up user, signed with a key that is not the server's."""
    claims = {"typ": "access", "sub": str(uuid4()), "sid": str(uuid4()), "iss": "eventshop"}
    return jwt.encode({**claims, "iat": 0, "exp": 4_000_000_000}, "x" * 32, algorithm="HS256")


def test_health_metrics_and_webhooks_are_not_limited(server: Server) -> None:
    with client_at(server) as client:
        answers = [
            client.get("/health"),
            client.get("/metrics"),
            client.post("/webhooks/stripe", content=b"{}"),
        ] * (LIMITS["reads"] + 1)
    assert 429 not in [a.status_code for a in answers]
    assert not [a for a in answers if "RateLimit-Limit" in a.headers]


def test_the_limits_are_shared_by_two_instances_through_redis(server: Server) -> None:
    """A second API process on the same database and Redis (projections in the first
    only): what one counts, the other refuses."""
    port = free_port()
    env = {
        **server.env,
        "SHOP_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SHOP_PROJECTIONS": "false",
    }
    second = launch(env, port, server.log_path.with_name("second.log"))
    address = new_address()
    try:
        with (
            client_at(server, address) as first,
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"X-Forwarded-For": address}
            ) as other,
        ):
            remaining = [
                send(instance, "reads").headers["RateLimit-Remaining"]
                for instance in (first, other) * 3
            ]
            assert remaining == ["5", "4", "3", "2", "1", "0"]
            assert_limited(send(other, "reads"), LIMITS["reads"])
            assert_limited(send(first, "reads"), LIMITS["reads"])
    finally:
        stop(second)


def test_cors_answers_the_listed_origin_only(server: Server) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }
    with client_at(server) as client:
        allowed = client.options("/checkout", headers={"Origin": ORIGIN, **preflight})
        denied = client.options("/checkout", headers={"Origin": FOREIGN, **preflight})
        read = send(client, "reads", headers={"Origin": ORIGIN})
        foreign = send(client, "reads", headers={"Origin": FOREIGN})
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "idempotency-key" in allowed.headers["Access-Control-Allow-Headers"].lower()
    assert denied.status_code == 400
    assert "Access-Control-Allow-Origin" not in denied.headers
    # Preflights are not counted: the first read of this address has all but one left.
    assert read.headers["RateLimit-Remaining"] == str(LIMITS["reads"] - 1)
    assert read.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert read.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = read.headers["Access-Control-Expose-Headers"].lower()
    assert {"ratelimit-remaining", "retry-after", "x-consistency-token"} <= {
        name.strip() for name in exposed.split(",")
    }
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_a_listed_origin_can_read_a_429(server: Server) -> None:
    with client_at(server) as client:
        exhaust(client, "checkout", headers={"Origin": ORIGIN})
        limited = send(client, "checkout", headers={"Origin": ORIGIN})
    assert_limited(limited, LIMITS["checkout"])
    assert limited.headers["Access-Control-Allow-Origin"] == ORIGIN


def assert_secured(answer: httpx.Response, csp: str = CSP) -> None:
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Content-Security-Policy"] == csp
    assert "Strict-Transport-Security" not in answer.headers  # plain http


def test_json_html_and_problem_answers_carry_the_security_headers(server: Server) -> None:
    with client_at(server) as client:
        catalog = client.get("/categories")
        missing = client.get(f"/products/{uuid4()}")
        page = client.get("/reset-password", params={"token": "not-a-token"})
        docs = client.get("/docs")
    assert catalog.status_code == 200
    assert_secured(catalog)
    refused(missing, 404, "not-found")
    assert_secured(missing)
    assert page.headers["content-type"].startswith("text/html")
    page_csp = page.headers["Content-Security-Policy"]  # the page's own: its inline style
    assert page_csp.startswith("default-src 'none'; style-src 'sha256-")
    assert "form-action 'self'" in page_csp
    assert_secured(page, page_csp)
    assert docs.status_code == 200
    assert_secured(docs, "frame-ancestors 'none'")


def test_hsts_when_the_trusted_proxy_says_the_request_came_over_tls(server: Server) -> None:
    with client_at(server) as client:
        tls = client.get("/categories", headers={"X-Forwarded-Proto": "https"})
        plain = client.get("/categories", headers={"X-Forwarded-Proto": "http"})
    assert tls.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in plain.headers


def test_personal_answers_are_not_stored_and_public_reads_may_be(server: Server) -> None:
    with client_at(server) as client:
        tokens = client.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert tokens.status_code == 200, tokens.text
        me = client.get("/users/me", headers=bearer(tokens.json()["access_token"]))
        cart = client.get("/cart")
        catalog = client.get("/categories")
        products = client.get("/products")
    for personal in (tokens, me, cart):
        assert personal.headers["Cache-Control"] == "no-store", personal.request.url
    assert me.status_code == 200, me.text
    for public in (catalog, products):
        assert public.status_code == 200, public.text
        assert "no-store" not in public.headers.get("Cache-Control", "")

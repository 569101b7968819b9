"""Bad input over HTTP: each refusal is the right 4xx as problem+json with a stable
``type``, never a 500, and never a write (the event stores' row counts are the same
before and after)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import TEST_SECRET
from tests.support.api import bearer, problem_type, refused
from tests.support.server import RESET_SUBJECT, VERIFY_SUBJECT, Server
from tests.support.side_door import nothing_written
from tests.support.users_client import (
    STRONG_PASSWORD,
    Account,
    register,
    unique_email,
    verified_account,
)

pytestmark = pytest.mark.e2e

SECRET_PASSWORD = "Zebra-Quokka-Secret-Phrase-7781"
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def shopper(server: Server) -> Account:
    with server.client() as client:
        return verified_account(server, client, "badinput")


def _registration(**overrides: Any) -> dict[str, Any]:
    return {
        "email": unique_email("bad"),
        "password": STRONG_PASSWORD,
        "name": "Bad Input",
        **overrides,
    }


# --- request bodies -------------------------------------------------------------

JSON = {"content-type": "application/json"}


def _chunks(total: int) -> Iterator[bytes]:
    """A body without Content-Length (chunked): the limit must be counted as it arrives."""
    yield b'{"email": "chunked@example.com", "password": "'
    sent = 0
    while sent < total:
        yield b"x" * 4096
        sent += 4096
    yield b'", "name": "Chunk"}'


BODY_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "malformed json",
        {"content": '{"email": "a@example.com",', "headers": JSON},
        400,
        "malformed-json",
    ),
    ("truncated json", {"content": '{"email"', "headers": JSON}, 400, "malformed-json"),
    (
        "wrong types",
        {"json": {"email": 42, "password": ["x"], "name": {"a": 1}}},
        422,
        "validation-failed",
    ),
    (
        "null fields",
        {"json": {"email": None, "password": None, "name": None}},
        422,
        "validation-failed",
    ),
    ("unknown field", {"json": _registration(roles=["admin"])}, 422, "validation-failed"),
    ("missing field", {"json": {"email": "nofields@example.com"}}, 422, "validation-failed"),
    ("empty object", {"json": {}}, 422, "validation-failed"),
    ("array body", {"json": [_registration()]}, 422, "validation-failed"),
    ("string body", {"json": "register me"}, 422, "validation-failed"),
    ("missing body", {}, 422, "validation-failed"),
    ("empty body", {"content": b"", "headers": JSON}, 422, "validation-failed"),
    (
        "not json content type",
        {"content": json.dumps(_registration()), "headers": {"content-type": "text/plain"}},
        422,
        "validation-failed",
    ),
    ("oversized body", {"json": _registration(name="n" * (MAX_BODY + 1))}, 413, "body-too-large"),
    (
        "oversized chunked body",
        {"content": lambda: _chunks(MAX_BODY + 4096), "headers": JSON},
        413,
        "body-too-large",
    ),
    ("invalid email", {"json": _registration(email="not-an-email")}, 422, "validation-failed"),
    ("email without domain", {"json": _registration(email="someone@")}, 422, "validation-failed"),
    ("blank name", {"json": _registration(name="   ")}, 422, "validation-failed"),
    ("overlong name", {"json": _registration(name="n" * 201)}, 422, "validation-failed"),
    ("weak password", {"json": _registration(password="password123")}, 422, "weak-password"),
    ("short password", {"json": _registration(password="Xy7!q")}, 422, "weak-password"),
    (
        "password is the name",
        {"json": _registration(name="Zebulonquix Harwell", password="Zebulonquix Harwell")},
        422,
        "weak-password",
    ),
    (
        "password is the email",
        {
            "json": _registration(
                email="zebulonquix@example.com", password="zebulonquix@example.com"
            )
        },
        422,
        "weak-password",
    ),
    ("overlong password", {"json": _registration(password="k9#" * 100)}, 422, "weak-password"),
    ("empty password", {"json": _registration(password="")}, 422, "validation-failed"),
    (
        "bad idempotency key",
        {"json": _registration(), "headers": {"Idempotency-Key": "has spaces in it"}},
        422,
        "validation-failed",
    ),
]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [pytest.param(kw, s, c, id=name) for name, kw, s, c in BODY_CASES],
)
def test_bad_registration_bodies(
    server: Server, client: httpx.Client, request_kwargs: dict[str, Any], status: int, code: str
) -> None:
    if callable(request_kwargs.get("content")):  # a fresh generator for each run
        request_kwargs = {**request_kwargs, "content": request_kwargs["content"]()}
    with nothing_written(server):
        response = client.post("/auth/register", **request_kwargs)
        refused(response, status, code)


def test_password_made_of_the_name_is_weak(server: Server, client: httpx.Client) -> None:
    with nothing_written(server):
        response = client.post(
            "/auth/register",
            json=_registration(name="Zebulonquix Harwell", password="zebulonquixharwell"),
        )
        refused(response, 422, "weak-password")


def test_deeply_nested_json_is_a_4xx(server: Server, client: httpx.Client) -> None:
    with nothing_written(server):
        response = client.post("/auth/register", content="[" * 50_000, headers=JSON)
        assert response.status_code == 400, response.text
        problem_type(response)
        response = client.post("/auth/register", content=b'{"email": "\xff\xfe"}', headers=JSON)
        assert response.status_code == 400, response.text
        problem_type(response)


def test_duplicate_email_is_409(server: Server, client: httpx.Client, shopper: Account) -> None:
    with nothing_written(server):
        for email in (shopper.email, shopper.email.upper(), f"  {shopper.email}  "):
            response = register(client, email, "a-different-strong-passphrase-55", "Copy Cat")
            if response.status_code == 422:  # surrounding spaces may be refused as invalid
                continue
            refused(response, 409, "email-taken")


PROFILE_CASES: list[tuple[str, Any]] = [
    ("nothing to change", {}),
    ("name removed", {"name": None}),
    ("blank name", {"name": ""}),
    ("bad phone", {"phone": "0123 456"}),
    (
        "bad country",
        {"addresses": [{"line1": "1 A St", "city": "B", "postal_code": "1", "country": "gbr"}]},
    ),
    (
        "address missing city",
        {"addresses": [{"line1": "1 A St", "postal_code": "1", "country": "GB"}]},
    ),
    (
        "too many addresses",
        {"addresses": [{"line1": "1", "city": "B", "postal_code": "1", "country": "GB"}] * 21},
    ),
    ("unknown profile field", {"email": "new@example.com"}),
    ("not a bool", {"notification_preferences": {"marketing_email": "perhaps"}}),
    ("unknown preference", {"notification_preferences": {"sms_spam": True}}),
    ("roles are not profile", {"roles": ["admin"]}),
]


@pytest.mark.parametrize(("body"), [pytest.param(b, id=n) for n, b in PROFILE_CASES])
def test_bad_profile_changes(
    server: Server, client: httpx.Client, shopper: Account, body: Any
) -> None:
    with nothing_written(server):
        response = client.patch("/users/me", json=body, headers=shopper.headers)
        refused(response, 422, "validation-failed")


def test_validation_problems_never_echo_the_password(server: Server, client: httpx.Client) -> None:
    attempts = [
        ("/auth/register", _registration(email="broken", password=SECRET_PASSWORD)),
        ("/auth/register", _registration(password=SECRET_PASSWORD, extra=SECRET_PASSWORD)),
        ("/auth/register", _registration(password=SECRET_PASSWORD * 40)),
        ("/auth/register", _registration(password=SECRET_PASSWORD, name=["list"])),
        ("/auth/login", {"email": 7, "password": SECRET_PASSWORD}),
        ("/auth/login", {"email": "a@example.com", "password": [SECRET_PASSWORD]}),
        ("/auth/password-reset/confirm", {"token": 1, "new_password": SECRET_PASSWORD}),
        ("/auth/password-reset/confirm", {"token": "x", "new_password": {"p": SECRET_PASSWORD}}),
    ]
    with nothing_written(server):
        for path, body in attempts:
            response = client.post(path, json=body)
            refused(response, 422, "validation-failed")
            assert SECRET_PASSWORD not in response.text, response.text
            assert SECRET_PASSWORD[:12] not in response.text
        weak = client.post("/auth/register", json=_registration(password="hunter2hunter2"))
        refused(weak, 422, "weak-password")
        assert "hunter2hunter2" not in weak.text


# --- tokens ---------------------------------------------------------------------


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _forge(claims: dict[str, Any], key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any]) -> str:
    """``alg: none``: a token anyone can make, which must never be honoured."""
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _flip_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    return ".".join([header, payload, signature[:middle] + swapped + signature[middle + 1 :]])


def _swap_payload(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return ".".join([header, _b64(claims), signature])


def test_access_tokens_are_checked(server: Server, client: httpx.Client, shopper: Account) -> None:
    now = datetime.now(UTC)
    claims = _claims(shopper.access_token)
    # Control: our forging reproduces a token the server accepts...
    genuine = _forge({**claims, "iat": now, "exp": now + timedelta(minutes=5)})
    assert client.get("/users/me", headers=bearer(genuine)).status_code == 200
    admin_id = str(uuid.uuid4())
    bad_tokens = {
        "tampered signature": _flip_signature(shopper.access_token),
        "tampered payload": _swap_payload(shopper.access_token, sub=admin_id),
        "expired": _forge(
            {**claims, "iat": now - timedelta(hours=2), "exp": now - timedelta(hours=1)}
        ),
        "refresh token as access": shopper.refresh_token,
        "another secret": _forge({**claims}, key="another-secret-" + "y" * 40),
        "alg none": _unsigned(claims),
        "other issuer": _forge({**claims, "iss": "someone-else"}),
        "no session": _forge({k: v for k, v in claims.items() if k != "sid"}),
        "unknown session": _forge({**claims, "sid": str(uuid.uuid4())}),
        "not a jwt": "not-a-jwt",
        "three dots": "a.b.c",
    }
    with nothing_written(server):
        for name, token in bad_tokens.items():
            response = client.get("/users/me", headers=bearer(token))
            body = refused(response, 401, "unauthenticated")
            assert response.headers["WWW-Authenticate"] == "Bearer", name
            if name == "expired":
                assert "expired" in body["detail"]
        for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
            refused(client.get("/users/me", headers=headers), 401, "unauthenticated")
            refused(client.post("/auth/logout", headers=headers), 401, "unauthenticated")


def test_refresh_tokens_are_checked(server: Server, client: httpx.Client, shopper: Account) -> None:
    claims = _claims(shopper.refresh_token)
    now = datetime.now(UTC)
    with nothing_written(server):
        for token in (
            shopper.access_token,  # an access token is not a refresh token
            _flip_signature(shopper.refresh_token),
            _forge({**claims, "iat": now - timedelta(days=2), "exp": now - timedelta(days=1)}),
            _forge({k: v for k, v in claims.items() if k != "gen"}),
            _forge({**claims, "gen": "1"}),
            _forge({**claims, "sub": "not-a-uuid"}),
        ):
            response = client.post("/auth/refresh", json={"refresh_token": token})
            refused(response, 401, "unauthenticated")
    # None of that ended the genuine session.
    assert client.get("/users/me", headers=shopper.headers).status_code == 200


def test_link_tokens_are_checked(server: Server, client: httpx.Client) -> None:
    email = unique_email("links")
    registered = register(client, email, STRONG_PASSWORD, "Link Checker")
    assert registered.status_code == 201
    user_id = registered.json()["id"]
    token = server.mailed_token(client, email, VERIFY_SUBJECT)
    assert client.post("/auth/password-reset", json={"email": email}).status_code == 202
    reset_token = server.mailed_token(client, email, RESET_SUBJECT)
    other_user, token_id, mac = token.split(".")
    assert other_user == user_id
    forged = [
        f"{user_id}.{token_id}.{'A' * len(mac)}",
        f"{uuid.uuid4()}.{token_id}.{mac}",
        f"{user_id}.{uuid.uuid4()}.{mac}",
        f"{user_id}.{token_id}",
        f"{token}.extra",
        "not-a-token",
        "x.y.z",
        reset_token,  # for another purpose
    ]
    with nothing_written(server):
        for bad in forged:
            response = client.post("/auth/verify-email", json={"token": bad})
            refused(response, 400, "invalid-token")
        for bad in [*forged[:-1], token]:
            response = client.post(
                "/auth/password-reset/confirm", json={"token": bad, "new_password": SECRET_PASSWORD}
            )
            refused(response, 400, "invalid-token")
        refused(
            client.post("/auth/verify-email", json={"token": "x" * 301}), 422, "validation-failed"
        )
        refused(client.post("/auth/verify-email", json={"token": ""}), 422, "validation-failed")
    # The genuine link was not burnt by the attempts.
    assert client.post("/auth/verify-email", json={"token": token}).status_code == 200


# --- queries --------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "users",
        "users:",
        "users:-1",
        "users:abc",
        "USERS:1",
        "users:1,",
        ":1",
        "users:1;drop",
    ],
)
def test_malformed_consistency_token_is_400(
    client: httpx.Client, shopper: Account, token: str
) -> None:
    response = client.get("/users/me", headers={**shopper.headers, "X-Consistency-Token": token})
    refused(response, 400, "bad-query")
    response = client.get("/users/me", params={"after": token}, headers=shopper.headers)
    refused(response, 400, "bad-query")


def test_overlong_consistency_token_is_refused(client: httpx.Client, shopper: Account) -> None:
    response = client.get(
        "/users/me", headers={**shopper.headers, "X-Consistency-Token": "users:1," * 200}
    )
    assert 400 <= response.status_code < 500
    problem_type(response)


def test_position_not_reached_is_refused(client: httpx.Client, shopper: Account) -> None:
    """A position the view has not reached in time: 503 with Retry-After (or, once
    positions past the head of the log are refused up front, 400)."""
    response = client.get(
        "/users/me", headers={**shopper.headers, "X-Consistency-Token": "users:999999999"}
    )
    assert response.status_code in (400, 503), response.text
    if response.status_code == 503:
        assert problem_type(response) == "projection-lagging"
        assert response.headers["Retry-After"] == "1"
    else:
        assert problem_type(response) == "bad-query"


def test_consistency_token_of_a_log_the_view_does_not_follow_is_ignored(
    client: httpx.Client, shopper: Account
) -> None:
    """Issue 13 D5: a well-formed token names positions; a view waits for those of
    the logs it follows and answers at once for the others, never 400."""
    response = client.get(
        "/users/me", headers={**shopper.headers, "X-Consistency-Token": "orders:999999999"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == shopper.email


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "abc",
        base64.urlsafe_b64encode(b"hello").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
        base64.urlsafe_b64encode(b"2024-01-01T00:00:00+00:00|not-a-uuid").decode(),
        base64.urlsafe_b64encode(f"yesterday|{uuid.UUID(int=1)}".encode()).decode(),
    ],
)
def test_bad_pagination_cursor_is_400(server: Server, client: httpx.Client, cursor: str) -> None:
    response = client.get(
        "/admin/users", params={"cursor": cursor}, headers=server.admin_headers(client)
    )
    refused(response, 400, "bad-query")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": "ten"},
        {"role": "superuser"},
        {"active": "maybe"},
        {"cursor": "c" * 201},
    ],
)
def test_bad_list_parameters_are_422(
    server: Server, client: httpx.Client, params: dict[str, Any]
) -> None:
    response = client.get("/admin/users", params=params, headers=server.admin_headers(client))
    refused(response, 422, "validation-failed")


# --- routes and permissions -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not-found"),
        ("POST", "/auth/nope", 404, "not-found"),
        ("GET", "/admin/nope", 404, "not-found"),
        ("GET", "/users/me/orders", 404, "not-found"),
        ("DELETE", "/auth/login", 405, "method-not-allowed"),
        ("GET", "/auth/register", 405, "method-not-allowed"),
    ],
)
def test_unknown_routes_are_problems(
    server: Server, client: httpx.Client, method: str, path: str, status: int, code: str
) -> None:
    with nothing_written(server):
        refused(client.request(method, path), status, code)


def test_bad_path_parameters_are_422(server: Server, client: httpx.Client) -> None:
    admin = server.admin_headers(client)
    with nothing_written(server):
        refused(client.get("/users/not-a-uuid", headers=admin), 422, "validation-failed")
        refused(
            client.post("/admin/users/42/roles", json={"role": "seller"}, headers=admin),
            422,
            "validation-failed",
        )
        refused(
            client.delete(f"/admin/users/{uuid.uuid4()}/roles/emperor", headers=admin),
            422,
            "validation-failed",
        )
        refused(
            client.post(
                f"/admin/users/{uuid.uuid4()}/roles", json={"role": "emperor"}, headers=admin
            ),
            422,
            "validation-failed",
        )


def test_admin_actions_on_unknown_users_are_404(server: Server, client: httpx.Client) -> None:
    admin = server.admin_headers(client)
    nobody = uuid.uuid4()
    with nothing_written(server):
        for response in (
            client.post(f"/admin/users/{nobody}/roles", json={"role": "seller"}, headers=admin),
            client.delete(f"/admin/users/{nobody}/roles/seller", headers=admin),
            client.post(f"/admin/users/{nobody}/deactivate", json={"reason": "x"}, headers=admin),
            client.get(f"/users/{nobody}", headers=admin),
        ):
            refused(response, 404, "not-found")


def test_customer_role_cannot_be_revoked(
    server: Server, client: httpx.Client, shopper: Account
) -> None:
    with nothing_written(server):
        response = client.delete(
            f"/admin/users/{shopper.id}/roles/customer", headers=server.admin_headers(client)
        )
        refused(response, 403, "not-permitted")


def test_non_admins_cannot_use_admin_endpoints(
    server: Server, client: httpx.Client, shopper: Account
) -> None:
    target = shopper.id
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/admin/users", None),
        ("GET", "/admin/mailbox", None),
        ("POST", f"/admin/users/{target}/roles", {"role": "admin"}),
        ("DELETE", f"/admin/users/{target}/roles/customer", None),
        ("POST", f"/admin/users/{target}/deactivate", {"reason": "because"}),
    ]
    with nothing_written(server):
        for method, path, body in calls:
            as_shopper = client.request(method, path, json=body, headers=shopper.headers)
            refused(as_shopper, 403, "not-permitted")
            anonymous = client.request(method, path, json=body)
            refused(anonymous, 401, "unauthenticated")
    # Not even another user's profile leaks through the user endpoint.
    admin_id = client.get("/users/me", headers=server.admin_headers(client)).json()["user_id"]
    refused(client.get(f"/users/{admin_id}", headers=shopper.headers), 404, "not-found")
    me = client.get("/users/me", headers=shopper.headers).json()
    assert me["roles"] == ["customer"]

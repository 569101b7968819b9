"""A shopper's life with their account, over HTTP against ``shop run``: register,
verify, sessions, profile, password reset, roles, admin views, logout and
deactivation; idempotent registration; rate-limited logins."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.users import ERASED_TEXT, erased_email
from infra.settings import Settings
from tests.conftest import TEST_SECRET
from tests.support.api import CONSISTENCY, bearer, problem_type
from tests.support.server import (
    ADMIN_EMAIL,
    RESET_SUBJECT,
    VERIFY_SUBJECT,
    Server,
    clean_env,
    run_shop,
)
from tests.support.users_client import (
    STRONG_PASSWORD,
    login,
    register,
    unique_email,
    verified_account,
)

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "quartz-meadow-falcon-ember-31"


def _consistent(token: str, headers: dict[str, str]) -> dict[str, str]:
    return {**headers, CONSISTENCY: token}


def test_the_whole_journey(server: Server, client: httpx.Client) -> None:
    email, name = unique_email("shopper"), "Sam Shopper"
    admin = server.admin_headers(client)

    # --- register -----------------------------------------------------------
    registered = register(client, email, STRONG_PASSWORD, name)
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["id"]
    assert str(uuid.UUID(user_id)) == user_id
    assert re.fullmatch(r"users:\d+", registered.headers[CONSISTENCY])
    assert registered.json()["position"] == registered.headers[CONSISTENCY]

    # --- no login before the address is verified ------------------------------
    early = login(client, email, STRONG_PASSWORD)
    assert early.status_code == 403, early.text
    assert problem_type(early) == "email-not-verified"

    # --- verify with the mailed token -----------------------------------------
    mail = server.mail(client, email, VERIFY_SUBJECT)[0]
    assert f"{server.base_url}/verify-email?token=" in mail["body"]
    assert name in mail["body"]
    token = server.mailed_token(client, email, VERIFY_SUBJECT)
    verified = client.post("/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["id"] == user_id
    used_again = client.post("/auth/verify-email", json={"token": token})
    assert used_again.status_code == 400
    assert problem_type(used_again) == "invalid-token"

    # --- log in -----------------------------------------------------------------
    first = login(client, email, STRONG_PASSWORD)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert tokens["user_id"] == user_id
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 15 * 60
    me = client.get(
        "/users/me",
        headers=_consistent(verified.headers[CONSISTENCY], bearer(tokens["access_token"])),
    )
    assert me.status_code == 200, me.text
    profile = me.json()
    assert profile["user_id"] == user_id
    assert profile["email"] == email
    assert profile["name"] == name
    assert profile["email_verified"] is True
    assert profile["roles"] == ["customer"]
    assert "password" not in str(profile)

    # --- refresh rotates; a reused refresh token revokes the whole session -------
    rotated = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    newest = rotated.json()
    assert newest["refresh_token"] != tokens["refresh_token"]
    assert client.get("/users/me", headers=bearer(newest["access_token"])).status_code == 200
    replayed = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replayed.status_code == 401, replayed.text
    assert problem_type(replayed) == "session-ended"
    assert replayed.headers["WWW-Authenticate"] == "Bearer"
    revoked = client.get("/users/me", headers=bearer(newest["access_token"]))
    assert revoked.status_code == 401, revoked.text
    assert problem_type(revoked) == "unauthenticated"
    assert (
        client.post("/auth/refresh", json={"refresh_token": newest["refresh_token"]}).status_code
        == 401
    )

    # --- change the profile, read it back at once ----------------------------------
    session = login(client, email, STRONG_PASSWORD).json()
    mine = bearer(session["access_token"])
    address = {
        "label": "home",
        "line1": "1 Test Street",
        "city": "Testville",
        "postal_code": "T1 1ST",
        "country": "GB",
    }
    patched = client.patch(
        "/users/me",
        json={"name": "Samantha Shopper", "phone": "+441632960961", "addresses": [address]},
        headers=mine,
    )
    assert patched.status_code == 200, patched.text
    changed = patched.headers[CONSISTENCY]
    me = client.get("/users/me", headers=_consistent(changed, mine))
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "Samantha Shopper"
    assert me.json()["phone"] == "+441632960961"
    assert me.json()["addresses"][0]["city"] == "Testville"
    own = client.get(f"/users/{user_id}", headers=_consistent(changed, mine))
    assert own.status_code == 200
    assert own.json()["name"] == "Samantha Shopper"

    # --- another shopper cannot see it (nor tell it exists); an admin can ---------
    other = verified_account(server, client, "other")
    hidden = client.get(f"/users/{user_id}", headers=other.headers)
    assert hidden.status_code == 404, hidden.text
    assert problem_type(hidden) == "not-found"
    unknown = client.get(f"/users/{uuid.uuid4()}", headers=other.headers)
    assert unknown.status_code == 404
    assert unknown.json() == hidden.json()
    seen = client.get(f"/users/{user_id}", headers=_consistent(changed, admin))
    assert seen.status_code == 200, seen.text
    assert seen.json()["name"] == "Samantha Shopper"

    # --- reset the password by mail: every session ends --------------------------
    requested = client.post("/auth/password-reset", json={"email": email})
    assert requested.status_code == 202, requested.text
    reset_token = server.mailed_token(client, email, RESET_SUBJECT)
    confirmed = client.post(
        "/auth/password-reset/confirm", json={"token": reset_token, "new_password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert client.get("/users/me", headers=mine).status_code == 401
    assert (
        client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code
        == 401
    )
    old_password = login(client, email, STRONG_PASSWORD)
    assert old_password.status_code == 401
    assert problem_type(old_password) == "invalid-credentials"
    reused_reset = client.post(
        "/auth/password-reset/confirm",
        json={"token": reset_token, "new_password": "another-fresh-passphrase-88"},
    )
    assert reused_reset.status_code == 400
    assert problem_type(reused_reset) == "invalid-token"
    session = login(client, email, NEW_PASSWORD).json()
    mine = bearer(session["access_token"])
    assert client.get("/users/me", headers=mine).status_code == 200

    # --- an admin makes them a seller -----------------------------------------------
    granted = client.post(f"/admin/users/{user_id}/roles", json={"role": "seller"}, headers=admin)
    assert granted.status_code == 200, granted.text
    grant = granted.headers[CONSISTENCY]
    as_admin = client.get(f"/users/{user_id}", headers=_consistent(grant, admin))
    assert set(as_admin.json()["roles"]) == {"customer", "seller"}
    as_self = client.get("/users/me", headers=_consistent(grant, mine))
    assert set(as_self.json()["roles"]) == {"customer", "seller"}
    sellers = client.get(
        "/admin/users", params={"role": "seller", "limit": 200}, headers=_consistent(grant, admin)
    )
    assert sellers.status_code == 200, sellers.text
    listed = {item["user_id"]: item for item in sellers.json()["items"]}
    assert user_id in listed
    assert listed[user_id]["email_verified"] is True
    assert all("seller" in item["roles"] for item in listed.values())

    # --- logout ends this session only ---------------------------------------------
    second = login(client, email, NEW_PASSWORD).json()
    out = client.post("/auth/logout", headers=mine)
    assert out.status_code == 200, out.text
    assert client.get("/users/me", headers=mine).status_code == 401
    assert (
        client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code
        == 401
    )
    assert client.get("/users/me", headers=bearer(second["access_token"])).status_code == 200

    # --- deactivated by an admin: no session, no login ----------------------------
    deactivated = client.post(
        f"/admin/users/{user_id}/deactivate", json={"reason": "chargeback fraud"}, headers=admin
    )
    assert deactivated.status_code == 200, deactivated.text
    assert client.get("/users/me", headers=bearer(second["access_token"])).status_code == 401
    refused = login(client, email, NEW_PASSWORD)
    assert refused.status_code in (401, 403), refused.text
    assert problem_type(refused) in ("account-inactive", "invalid-credentials")
    closed = client.get(
        f"/users/{user_id}", headers=_consistent(deactivated.headers[CONSISTENCY], admin)
    )
    assert closed.json()["active"] is False
    listing = client.get(
        "/admin/users",
        params={"email_prefix": email, "active": "false"},
        headers=_consistent(deactivated.headers[CONSISTENCY], admin),
    )
    [row] = listing.json()["items"]
    assert row["deactivation_reason"] == "chargeback fraud"
    # No mail for a closed account, and no word on whether it exists.
    assert client.post("/auth/password-reset", json={"email": email}).status_code == 202


def test_a_user_can_close_their_own_account(server: Server, client: httpx.Client) -> None:
    account = verified_account(server, client, "closer")
    closed = client.post("/users/me/deactivate", headers=account.headers)
    assert closed.status_code == 200, closed.text
    assert client.get("/users/me", headers=account.headers).status_code == 401
    assert login(client, account.email, account.password).status_code in (401, 403)


def test_change_password_signs_out_other_sessions(server: Server, client: httpx.Client) -> None:
    account = verified_account(server, client, "changer")
    other_device = login(client, account.email, account.password).json()
    wrong = client.post(
        "/auth/password",
        json={"current_password": "not-the-password-at-all", "new_password": NEW_PASSWORD},
        headers=account.headers,
    )
    assert wrong.status_code == 401
    assert problem_type(wrong) == "invalid-credentials"
    changed = client.post(
        "/auth/password",
        json={"current_password": account.password, "new_password": NEW_PASSWORD},
        headers=account.headers,
    )
    assert changed.status_code == 200, changed.text
    assert client.get("/users/me", headers=bearer(other_device["access_token"])).status_code == 401
    assert login(client, account.email, account.password).status_code == 401
    assert login(client, account.email, NEW_PASSWORD).status_code == 200


def test_admin_lists_by_role_with_keyset_pagination(server: Server, client: httpx.Client) -> None:
    admin = server.admin_headers(client)
    label = f"page{uuid.uuid4().hex[:6]}"
    sellers = [verified_account(server, client, label) for _ in range(3)]
    customer = verified_account(server, client, label)
    last = ""
    for seller in sellers:
        granted = client.post(
            f"/admin/users/{seller.id}/roles", json={"role": "seller"}, headers=admin
        )
        assert granted.status_code == 200, granted.text
        last = granted.headers[CONSISTENCY]
    headers = _consistent(last, admin)

    def page(cursor: str | None) -> dict[str, Any]:
        params: dict[str, str | int] = {"role": "seller", "email_prefix": label, "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get("/admin/users", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    first = page(None)
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = page(first["next_cursor"])
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    items = first["items"] + second["items"]
    assert {i["user_id"] for i in items} == {s.id for s in sellers}
    assert len({i["user_id"] for i in items}) == 3
    assert all("seller" in i["roles"] for i in items)
    # Newest first, across the page boundary too.
    registered = [datetime.fromisoformat(i["registered_at"]) for i in items]
    assert registered == sorted(registered, reverse=True)
    assert [i["user_id"] for i in items] == [s.id for s in reversed(sellers)]

    everyone = client.get("/admin/users", params={"email_prefix": label}, headers=headers).json()
    assert {i["user_id"] for i in everyone["items"]} == {customer.id, *(s.id for s in sellers)}
    assert everyone["next_cursor"] is None
    customers_only = client.get(
        "/admin/users",
        params={"email_prefix": label, "role": "admin"},
        headers=headers,
    ).json()
    assert customers_only["items"] == []
    admins = client.get("/admin/users", params={"role": "admin"}, headers=headers).json()
    # Other tests of the shared server make admins of their own: the CLI-made one is
    # among them, and every one listed has the role.
    assert ADMIN_EMAIL in [i["email"] for i in admins["items"]]
    assert all("admin" in i["roles"] for i in admins["items"])

    # Revoking the role takes them out of the seller list.
    revoked = client.delete(f"/admin/users/{sellers[0].id}/roles/seller", headers=admin)
    assert revoked.status_code == 200, revoked.text
    after = client.get(
        "/admin/users",
        params={"role": "seller", "email_prefix": label},
        headers=_consistent(revoked.headers[CONSISTENCY], admin),
    ).json()
    assert {i["user_id"] for i in after["items"]} == {sellers[1].id, sellers[2].id}


def test_registration_is_idempotent(server: Server, client: httpx.Client) -> None:
    email = unique_email("idem")
    payload = {"email": email, "password": STRONG_PASSWORD, "name": "Ida Empotent"}
    key = {"Idempotency-Key": f"register-{uuid.uuid4()}"}

    first = client.post("/auth/register", json=payload, headers=key)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    before = server.event_count()

    again = client.post("/auth/register", json=payload, headers=key)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers[CONSISTENCY] == first.headers[CONSISTENCY]
    assert server.event_count() == before

    # Same key, another body: refused, nothing written.
    changed = client.post("/auth/register", json={**payload, "name": "Someone Else"}, headers=key)
    assert changed.status_code == 422, changed.text
    assert problem_type(changed).endswith("idempotency-key-reused")
    assert server.event_count() == before

    # Another key for the same address is a second registration: refused.
    duplicate = client.post(
        "/auth/register", json=payload, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert duplicate.status_code == 409
    assert problem_type(duplicate) == "email-taken"
    assert server.event_count() == before

    # One account, one verification mail.
    admin = server.admin_headers(client)
    accounts = client.get(
        "/admin/users",
        params={"email_prefix": email},
        headers=_consistent(first.headers[CONSISTENCY], admin),
    ).json()["items"]
    assert [a["user_id"] for a in accounts] == [first.json()["id"]]
    assert len(server.mail(client, email, VERIFY_SUBJECT)) == 1


def test_failed_logins_are_rate_limited_per_account(server: Server, client: httpx.Client) -> None:
    limit = Settings.model_fields["login_attempts_per_account"].default
    assert isinstance(limit, int)
    target = verified_account(server, client, "target")  # one login attempt spent
    bystander = verified_account(server, client, "bystander")
    before = server.event_count()
    for attempt in range(2, limit + 1):
        wrong = login(client, target.email, f"wrong-guess-{attempt}-x")
        assert wrong.status_code == 401, (attempt, wrong.text)
    throttled = login(client, target.email, "wrong-guess-final-x")
    assert throttled.status_code == 429, throttled.text
    assert problem_type(throttled) == "rate-limited"
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 61
    # While throttled, even the right password is not tried (no oracle for guessing).
    right = login(client, target.email.upper(), target.password)
    assert right.status_code == 429
    assert server.event_count() == before
    # Other accounts are not affected.
    assert login(client, bystander.email, bystander.password).status_code == 200


def test_password_reset_requests_are_rate_limited(server: Server, client: httpx.Client) -> None:
    limit = Settings.model_fields["reset_requests_per_account"].default
    assert isinstance(limit, int)
    email = unique_email("nobody")  # no account: the answer must not tell
    for _ in range(limit):
        assert client.post("/auth/password-reset", json={"email": email}).status_code == 202
    throttled = client.post("/auth/password-reset", json={"email": email})
    assert throttled.status_code == 429
    assert problem_type(throttled) == "rate-limited"
    assert int(throttled.headers["Retry-After"]) >= 1


def test_a_failed_attempt_does_not_use_up_the_idempotency_key(
    server: Server, client: httpx.Client
) -> None:
    email = unique_email("retry")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    weak = client.post(
        "/auth/register",
        json={"email": email, "password": "password1234", "name": "Retry Later"},
        headers=key,
    )
    assert weak.status_code == 422
    assert problem_type(weak) == "weak-password"
    fixed = client.post(
        "/auth/register",
        json={"email": email, "password": STRONG_PASSWORD, "name": "Retry Later"},
        headers=key,
    )
    assert fixed.status_code == 201, fixed.text
    assert "Idempotent-Replayed" not in fixed.headers


def test_concurrent_retries_with_one_key_make_one_account(
    server: Server, client: httpx.Client
) -> None:
    email = unique_email("race")
    payload = {"email": email, "password": STRONG_PASSWORD, "name": "Rae Sing"}
    key = {"Idempotency-Key": str(uuid.uuid4())}

    def attempt(_: int) -> httpx.Response:
        with server.client() as own:
            return own.post("/auth/register", json=payload, headers=key)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(attempt, range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    created = [r for r in responses if r.status_code == 201]
    assert created
    assert len({r.json()["id"] for r in created}) == 1
    for busy in (r for r in responses if r.status_code == 409):
        assert problem_type(busy) == "request-in-progress"
        assert busy.headers["Retry-After"] == "1"
    assert len(server.mail(client, email, VERIFY_SUBJECT)) == 1


def test_concurrent_registrations_of_one_address_make_one_account(
    server: Server, client: httpx.Client
) -> None:
    email = unique_email("twin")

    def attempt(i: int) -> httpx.Response:
        with server.client() as own:
            return register(own, email.upper() if i % 2 else email, STRONG_PASSWORD, f"Twin {i}")

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(attempt, range(6)))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409, 409], [
        r.text for r in responses
    ]
    for r in responses:
        if r.status_code == 409:
            assert problem_type(r) == "email-taken"
    [winner] = [r for r in responses if r.status_code == 201]
    accounts = client.get(
        "/admin/users",
        params={"email_prefix": email},
        headers=_consistent(winner.headers[CONSISTENCY], server.admin_headers(client)),
    ).json()["items"]
    assert [a["user_id"] for a in accounts] == [winner.json()["id"]]


def test_resent_verification_replaces_the_first_link(server: Server, client: httpx.Client) -> None:
    email = unique_email("resend")
    assert register(client, email, STRONG_PASSWORD, "Re Send").status_code == 201
    first = server.mailed_token(client, email, VERIFY_SUBJECT)
    resent = client.post("/auth/verify-email/resend", json={"email": email})
    assert resent.status_code == 202
    second = server.mailed_token(client, email, VERIFY_SUBJECT, count=2)
    assert second != first
    stale = client.post("/auth/verify-email", json={"token": first})
    assert stale.status_code == 400
    assert problem_type(stale) == "invalid-token"
    assert client.post("/auth/verify-email", json={"token": second}).status_code == 200
    # Unknown and already verified addresses get the same answer, and no mail.
    nobody = unique_email("nobody")
    assert client.post("/auth/verify-email/resend", json={"email": nobody}).status_code == 202
    assert client.post("/auth/verify-email/resend", json={"email": email}).status_code == 202
    assert len(server.mail(client, email, VERIFY_SUBJECT, count=2)) == 2


def test_wrong_password_and_unknown_address_look_the_same(
    server: Server, client: httpx.Client
) -> None:
    account = verified_account(server, client, "lookalike")
    wrong = login(client, account.email, "not-my-password-at-all")
    unknown = login(client, unique_email("ghost"), "not-my-password-at-all")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert problem_type(wrong) == "invalid-credentials"


def test_email_addresses_are_case_insensitive(server: Server, client: httpx.Client) -> None:
    local = f"Mixed.Case-{uuid.uuid4().hex[:8]}"
    email = f"{local}@Example.COM"
    registered = register(client, email, STRONG_PASSWORD, "Mixed Case")
    assert registered.status_code == 201, registered.text
    token = server.mailed_token(client, email.lower(), VERIFY_SUBJECT)
    assert client.post("/auth/verify-email", json={"token": token}).status_code == 200
    logged_in = login(client, email.upper(), STRONG_PASSWORD)
    assert logged_in.status_code == 200, logged_in.text
    me = client.get("/users/me", headers=bearer(logged_in.json()["access_token"])).json()
    assert me["email"] == email.lower()


def test_a_refused_new_password_does_not_use_up_the_reset_link(
    server: Server, client: httpx.Client
) -> None:
    account = verified_account(server, client, "resetter")
    assert client.post("/auth/password-reset", json={"email": account.email}).status_code == 202
    token = server.mailed_token(client, account.email, RESET_SUBJECT)
    before = server.event_count()
    weak = client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": "password1234"}
    )
    assert weak.status_code == 422
    assert problem_type(weak) == "weak-password"
    assert server.event_count() == before
    # Still signed in, and the link still works.
    assert client.get("/users/me", headers=account.headers).status_code == 200
    done = client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert done.status_code == 200, done.text
    assert login(client, account.email, NEW_PASSWORD).status_code == 200


def test_cli_shows_the_same_mailbox(server: Server, client: httpx.Client) -> None:
    email = unique_email("cli")
    assert register(client, email, STRONG_PASSWORD, "Cli Reader").status_code == 201
    token = server.mailed_token(client, email, VERIFY_SUBJECT)
    shown = server.shop("mailbox", "--to", email)
    assert shown.returncode == 0, shown.stderr
    assert token in shown.stdout.replace("\n", "")


def test_an_admin_cannot_lock_themselves_out(server: Server, client: httpx.Client) -> None:
    admin_headers = server.admin_headers(client)
    me = client.get("/users/me", headers=admin_headers).json()
    for response in (
        client.post(
            f"/admin/users/{me['user_id']}/deactivate",
            json={"reason": "oops"},
            headers=admin_headers,
        ),
        client.post("/users/me/deactivate", headers=admin_headers),
        client.delete(f"/admin/users/{me['user_id']}/roles/admin", headers=admin_headers),
    ):
        assert response.status_code == 403, response.text
        assert problem_type(response) == "not-permitted"
    assert client.get("/users/me", headers=admin_headers).status_code == 200


def test_several_workers_need_redis_for_their_rate_limits(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    env = {
        **clean_env(),
        "SHOP_DATABASE_URL": make_database(),
        "SHOP_DATA_DIR": str(tmp_path),
        "SHOP_SECRET_KEY": TEST_SECRET,
    }
    refused = run_shop(env, "run", "--workers", "2", timeout=120)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "SHOP_REDIS_URL" in refused.stdout


def test_an_erased_account_s_tokens_stop_working(server: Server, client: httpx.Client) -> None:
    """Erasure closes the account as deactivation does (ADR 0024): every session's
    access token is refused at once, the refresh tokens and the password too; what
    an admin sees of it reads as erased."""
    account = verified_account(server, client, "erased")
    other_device = login(client, account.email, account.password).json()
    wrong = client.post(
        "/users/me/erasure", json={"password": "not-the-password-at-all"}, headers=account.headers
    )
    assert wrong.status_code == 401, wrong.text
    assert client.get("/users/me", headers=account.headers).status_code == 200

    erased = client.post(
        "/users/me/erasure", json={"password": account.password}, headers=account.headers
    )
    assert erased.status_code == 200, erased.text
    for access in (account.access_token, other_device["access_token"]):
        assert client.get("/users/me", headers=bearer(access)).status_code == 401
    for refresh in (account.refresh_token, other_device["refresh_token"]):
        refused = client.post("/auth/refresh", json={"refresh_token": refresh})
        assert refused.status_code == 403, refused.text
        assert problem_type(refused) == "account-inactive"
    relogin = login(client, account.email, account.password)
    assert relogin.status_code == 401, relogin.text

    admin = _consistent(erased.headers[CONSISTENCY], server.admin_headers(client))
    shown = client.get(f"/users/{account.id}", headers=admin).json()
    assert (shown["email"], shown["name"], shown["phone"], shown["active"]) == (
        erased_email(uuid.UUID(account.id)),
        ERASED_TEXT,
        None,
        False,
    )
    listed = client.get("/admin/users", params={"email_prefix": account.email}, headers=admin)
    assert listed.json()["items"] == []


def test_an_admin_erasure_refuses_the_user_s_tokens(server: Server, client: httpx.Client) -> None:
    account = verified_account(server, client, "erased-by-admin")
    erased = client.post(f"/admin/users/{account.id}/erasure", headers=server.admin_headers(client))
    assert erased.status_code == 200, erased.text
    assert client.get("/users/me", headers=account.headers).status_code == 401
    refused = client.post("/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refused.status_code == 403, refused.text

"""The ``Idempotency-Key`` dependency over HTTP, in memory: who the caller is (the
principal, else the guest cart, else the client's address), and the refusal of
duplicate or empty key headers before anything runs."""

from __future__ import annotations

from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from commands.application import Written
from commands.http.deps import IdempotencyKey
from commands.http.responses import respond_idempotently
from domain.access import Principal
from domain.cart_tokens import guest_cart_token
from domain.errors import AuthenticationRequired
from infra.entrypoints import problems
from tests.unit.test_idempotency import MemoryStore

CART_KEY = b"k" * 32
ALICE, BOB = uuid4(), uuid4()


class Thing(BaseModel):
    name: str


async def _authenticate(token: str | None) -> Principal:
    if token not in (str(ALICE), str(BOB)):
        raise AuthenticationRequired("log in first")
    return Principal(UUID(token), uuid4(), frozenset())


class App:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.runs = 0
        app = FastAPI()
        problems.install(app)
        app.state.write = SimpleNamespace(idempotency=self.store, authenticate=_authenticate)
        app.state.ordering = SimpleNamespace(cart_token_key=CART_KEY)

        @app.post("/things", status_code=201)
        def make(body: Thing, idempotency: IdempotencyKey) -> JSONResponse:
            def write() -> Written:
                self.runs += 1
                return Written(idempotency.new_id(), None)

            return respond_idempotently(idempotency, body, write)

        self.client = TestClient(app)


@pytest.fixture
def api() -> App:
    return App()


def _bearer(user: UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {user}"}


def test_each_caller_gets_its_own_request_and_id_for_the_same_key(api: App) -> None:
    body = {"name": "x"}
    cart = uuid4()
    callers = [_bearer(ALICE), _bearer(BOB), {"X-Cart-Token": guest_cart_token(CART_KEY, cart)}, {}]
    answers = [
        api.client.post("/things", json=body, headers={"Idempotency-Key": "k", **h})
        for h in callers
    ]
    assert [a.status_code for a in answers] == [201] * 4
    assert all("Idempotent-Replayed" not in a.headers for a in answers)
    assert len({a.json()["id"] for a in answers}) == 4
    assert api.runs == 4
    scopes = sorted(scope for scope, _ in api.store.entries)
    assert scopes == sorted(
        [
            f"POST /things by user:{ALICE}",
            f"POST /things by user:{BOB}",
            f"POST /things by cart:{cart}",
            "POST /things by client:testclient",
        ]
    )


def test_the_same_caller_replays_or_is_refused_another_body(api: App) -> None:
    first = api.client.post(
        "/things", json={"name": "x"}, headers={"Idempotency-Key": "k", **_bearer(ALICE)}
    )
    again = api.client.post(
        "/things", json={"name": "x"}, headers={"Idempotency-Key": "k", **_bearer(ALICE)}
    )
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = api.client.post(
        "/things", json={"name": "y"}, headers={"Idempotency-Key": "k", **_bearer(ALICE)}
    )
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert api.runs == 1


@pytest.mark.parametrize(
    "keys",
    [["a", "b"], ["a", "a"], ["a", ""], ["a", "x" * 300], [""], ["a", "b", "c"]],
    ids=["two", "the-same-twice", "one-empty", "one-invalid", "empty", "three"],
)
def test_duplicate_or_empty_keys_are_refused_before_anything_runs(
    api: App, keys: list[str]
) -> None:
    headers = [("Idempotency-Key", k) for k in keys] + list(_bearer(ALICE).items())
    answer = api.client.post("/things", json={"name": "x"}, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/idempotency-key-invalid")
    assert api.runs == 0 and api.store.entries == {}


@pytest.mark.parametrize("key", ["x" * 256, "with space", "\u00e9".encode("latin-1")])
def test_a_key_too_long_or_outside_the_pattern_is_still_422(api: App, key: str | bytes) -> None:
    answer = api.client.post(
        "/things", json={"name": "x"}, headers=[("Idempotency-Key", key), *_bearer(ALICE).items()]
    )
    assert answer.status_code == 422, answer.text
    assert api.runs == 0


def test_a_bad_bearer_token_is_refused_not_taken_for_another_caller(api: App) -> None:
    answer = api.client.post(
        "/things",
        json={"name": "x"},
        headers={"Idempotency-Key": "k", "Authorization": "Bearer no"},
    )
    assert answer.status_code == 401
    assert api.runs == 0

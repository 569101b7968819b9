"""Idempotency keys, against an in-memory store that keeps the IdempotencyStore contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from commands.errors import IdempotencyKeyReused, RequestInProgress
from commands.idempotency import ABANDONED_AFTER_SECONDS, Idempotency
from commands.ports import IdempotencyRecord, StoredResponse

CREATED = StoredResponse(201, {"id": "42"})
ALICE, BOB = "user:alice", "user:bob"
ORDERS = f"orders by {ALICE}"
"""The scope Idempotency records for ALICE's requests to "orders"."""


@dataclass
class _Entry:
    fingerprint: str
    response: StoredResponse | None
    age_seconds: float = 0.0


class MemoryStore:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], _Entry] = {}

    def claim(self, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        entry = self.entries.get((scope, key))
        if entry is None:
            self.entries[scope, key] = _Entry(fingerprint, None)
            return None
        return IdempotencyRecord(entry.fingerprint, entry.response, entry.age_seconds)

    def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        self.entries[scope, key].response = response

    def release(self, scope: str, key: str) -> None:
        self.entries.pop((scope, key), None)

    def take_over(self, scope: str, key: str, older_than_seconds: float) -> bool:
        entry = self.entries[scope, key]
        if entry.response is None and entry.age_seconds > older_than_seconds:
            entry.age_seconds = 0.0
            return True
        return False


class Handler:
    def __init__(self, response: StoredResponse = CREATED) -> None:
        self.calls = 0
        self.response = response

    def __call__(self) -> StoredResponse:
        self.calls += 1
        return self.response


def test_without_a_key_every_request_runs_and_gets_a_fresh_id() -> None:
    store = MemoryStore()
    handler = Handler()
    idem = Idempotency(store, "orders", None, caller=ALICE)
    assert idem.run({"a": 1}, handler) == (CREATED, False)
    assert idem.run({"a": 1}, handler) == (CREATED, False)
    assert handler.calls == 2
    assert idem.new_id() != idem.new_id()
    assert store.entries == {}


def test_new_ids_derive_from_scope_and_key() -> None:
    store = MemoryStore()
    assert (
        Idempotency(store, "orders", "k1", caller=ALICE).new_id()
        == Idempotency(store, "orders", "k1", caller=ALICE).new_id()
    )
    assert (
        Idempotency(store, "orders", "k1", caller=ALICE).new_id()
        != Idempotency(store, "orders", "k2", caller=ALICE).new_id()
    )
    assert (
        Idempotency(store, "orders", "k1", caller=ALICE).new_id()
        != Idempotency(store, "users", "k1", caller=ALICE).new_id()
    )


def test_the_same_key_and_body_replay_the_first_answer() -> None:
    store = MemoryStore()
    handler = Handler()
    first = Idempotency(store, "orders", "k", caller=ALICE).run({"a": 1, "b": [1, 2]}, handler)
    # Key order does not matter: the fingerprint sorts keys.
    again = Idempotency(store, "orders", "k", caller=ALICE).run({"b": [1, 2], "a": 1}, handler)
    assert first == (CREATED, False)
    assert again == (CREATED, True)
    assert handler.calls == 1


def test_the_same_key_with_another_body_is_refused() -> None:
    store = MemoryStore()
    Idempotency(store, "orders", "k", caller=ALICE).run({"a": 1}, Handler())
    with pytest.raises(IdempotencyKeyReused):
        Idempotency(store, "orders", "k", caller=ALICE).run({"a": 2}, Handler())


def test_keys_are_scoped() -> None:
    store = MemoryStore()
    Idempotency(store, "orders", "k", caller=ALICE).run({"a": 1}, Handler())
    handler = Handler(StoredResponse(200, {}))
    assert Idempotency(store, "carts", "k", caller=ALICE).run({"a": 2}, handler) == (
        handler.response,
        False,
    )


def test_a_request_in_progress_is_refused_with_retry_after() -> None:
    store = MemoryStore()
    store.claim(ORDERS, "k", _fingerprint_of({"a": 1}))
    with pytest.raises(RequestInProgress) as caught:
        Idempotency(store, "orders", "k", caller=ALICE).run({"a": 1}, Handler())
    assert caught.value.headers == {"Retry-After": "1"}


def test_an_abandoned_request_is_taken_over() -> None:
    store = MemoryStore()
    fingerprint = _fingerprint_of({"a": 1})
    store.claim(ORDERS, "k", fingerprint)
    store.entries[ORDERS, "k"].age_seconds = ABANDONED_AFTER_SECONDS + 1
    handler = Handler()
    assert Idempotency(store, "orders", "k", caller=ALICE).run({"a": 1}, handler) == (
        CREATED,
        False,
    )
    assert handler.calls == 1
    assert store.entries[ORDERS, "k"].response == CREATED


def test_a_failed_request_releases_its_key_so_a_retry_runs() -> None:
    store = MemoryStore()

    def fails() -> StoredResponse:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        Idempotency(store, "orders", "k", caller=ALICE).run({"a": 1}, fails)
    assert store.entries == {}
    assert Idempotency(store, "orders", "k", caller=ALICE).run({"a": 1}, Handler()) == (
        CREATED,
        False,
    )


def _fingerprint_of(body: dict[str, Any]) -> str:
    """The fingerprint Idempotency computes, read back from a scratch claim."""
    scratch = MemoryStore()
    Idempotency(scratch, "scratch", "scratch", caller=ALICE).run(body, Handler())
    return scratch.entries[f"scratch by {ALICE}", "scratch"].fingerprint


def test_the_same_key_from_another_caller_is_that_callers_own_request() -> None:
    store = MemoryStore()
    alice = Idempotency(store, "orders", "order-1", caller=ALICE)
    bob = Idempotency(store, "orders", "order-1", caller=BOB)
    assert alice.new_id() != bob.new_id()  # Bob's order is not Alice's
    assert alice.new_id() == Idempotency(store, "orders", "order-1", caller=ALICE).new_id()
    first, second = Handler(), Handler(StoredResponse(201, {"id": "43"}))
    assert alice.run({"a": 1}, first) == (first.response, False)
    assert bob.run({"a": 1}, second) == (second.response, False)  # not Alice's answer
    assert (first.calls, second.calls) == (1, 1)


def test_each_caller_replays_its_own_answer_and_refuses_its_own_reuse() -> None:
    store = MemoryStore()
    first, second = Handler(), Handler(StoredResponse(201, {"id": "43"}))
    Idempotency(store, "orders", "k", caller=ALICE).run({"a": 1}, first)
    Idempotency(store, "orders", "k", caller=BOB).run({"a": 2}, second)  # another body: fine
    assert Idempotency(store, "orders", "k", caller=BOB).run({"a": 2}, Handler()) == (
        second.response,
        True,
    )
    assert Idempotency(store, "orders", "k", caller=ALICE).run({"a": 1}, Handler()) == (
        first.response,
        True,
    )
    with pytest.raises(IdempotencyKeyReused):
        Idempotency(store, "orders", "k", caller=BOB).run({"a": 1}, Handler())

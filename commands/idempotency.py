"""Idempotency keys: the same key and body get the first answer again; the same key
with another body is refused (422). Creations derive their new id from the key, so
even a retry after a crash between saving and answering finds what it made. A key
is its caller's own: another caller sending it makes its own request (and id)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import orjson

from commands.errors import IdempotencyKeyReused, RequestInProgress
from commands.ports import IdempotencyStore, StoredResponse

ABANDONED_AFTER_SECONDS = 30.0


def request_fingerprint(request: dict[str, Any]) -> str:
    """What must match for a key's first answer to be replayed: a digest of the
    request, independent of key order."""
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Idempotency:
    def __init__(
        self,
        store: IdempotencyStore,
        scope: str,
        key: str | None,
        *,
        caller: str,
        path_params: dict[str, str] | None = None,
    ) -> None:
        self._store = store
        # Records and derived ids are keyed by the caller too: Bob's key "order-1"
        # must neither replay Alice's answer nor collide with the id she was given.
        self._scope = f"{scope} by {caller}"
        self.key = key
        # The scope is the route template, so the request's own path parameters are
        # part of what must match: one key cannot replay another resource's answer.
        self._path_params = path_params or {}

    def new_id(self) -> UUID:
        if self.key is None:
            return uuid4()
        return uuid5(NAMESPACE_URL, f"/eventshop/idempotency/{self._scope}/{self.key}")

    def run(
        self, body: dict[str, Any], handler: Callable[[], StoredResponse]
    ) -> tuple[StoredResponse, bool]:
        """The response, and whether it is a replay of an earlier one."""
        if self.key is None:
            return handler(), False
        fingerprint = request_fingerprint({"path": self._path_params, "body": body})
        record = self._store.claim(self._scope, self.key, fingerprint)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used with a different request body"
                )
            if record.response is not None:
                return record.response, True
            if not self._store.take_over(self._scope, self.key, ABANDONED_AFTER_SECONDS):
                raise RequestInProgress(
                    "a request with this Idempotency-Key is still in progress",
                    headers={"Retry-After": "1"},
                )
        try:
            response = handler()
        except BaseException:
            self._store.release(self._scope, self.key)
            raise
        self._store.complete(self._scope, self.key, response)
        return response, False

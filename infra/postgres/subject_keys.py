"""The data subjects' keys in Postgres (``subject_keys``: one row per subject), for
the event store's sealed personal fields (ADR 0024).

A key is created the first time a subject's data is sealed and deleted when the
subject is erased: its row stays, key NULL, so that no new key is ever made for an
erased subject (what is sealed for one afterwards is stored as its erased value).
With ``SHOP_ENCRYPTION_KEY`` set, keys are stored wrapped (AES-GCM) under a key
derived from it, so that a copy of the database alone reads no sealed field.

Keys are cached per process (every Application of a database shares one cache):
a key found is kept for ``KEY_TTL_SECONDS``; an erasure is forgotten at once by the
process that makes it and by any process that reads the ``User.Erased`` event, and
by the others when their copy expires.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.postgres import PostgresDatastore

DDL = """
CREATE TABLE IF NOT EXISTS subject_keys (
    subject_id uuid PRIMARY KEY,
    wrapped_key bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at timestamptz
);
"""
KEY_TTL_SECONDS = 60.0
CACHE_CAPACITY = 100_000
_PLAIN, _WRAPPED = b"\x01", b"\x02"
_NO_KEY = b""
"""Cached for a subject that has no key yet (expires like a key)."""
_NONCE = 12


class _Cache:
    """Subject -> (key, None once erased, or ``_NO_KEY``; when it was read), least
    recently used out first."""

    def __init__(self) -> None:
        self._entries: OrderedDict[UUID, tuple[bytes | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, subject: UUID) -> tuple[bytes | None] | None:
        with self._lock:
            entry = self._entries.get(subject)
            if entry is None:
                return None
            key, read_at = entry
            if key is not None and time.monotonic() - read_at > KEY_TTL_SECONDS:
                del self._entries[subject]
                return None
            self._entries.move_to_end(subject)
            return (key,)

    def put(self, subject: UUID, key: bytes | None) -> None:
        with self._lock:
            self._entries[subject] = (key, time.monotonic())
            self._entries.move_to_end(subject)
            while len(self._entries) > CACHE_CAPACITY:
                self._entries.popitem(last=False)


_caches: dict[str, _Cache] = {}
_caches_lock = threading.Lock()


def _shared_cache(store: str) -> _Cache:
    with _caches_lock:
        return _caches.setdefault(store, _Cache())


class SubjectKeys:
    """The keys of data subjects, over ``datastore`` (the event store's); ``store``
    names the database, for the cache its Applications share."""

    def __init__(self, datastore: PostgresDatastore, store: str, master_key: bytes | None) -> None:
        self._datastore = datastore
        self._table = f"{datastore.schema}.subject_keys" if datastore.schema else "subject_keys"
        self._wrapping = (
            None
            if master_key is None
            else AESGCM(
                HKDF(SHA256(), 32, salt=None, info=b"eventshop subject keys").derive(master_key)
            )
        )
        self._cache = _shared_cache(store)

    def for_reading(self, subject: UUID) -> bytes | None:
        """The subject's key; None once erased (or if it never had one)."""
        return self._lookup(subject) or None

    def is_erased(self, subject: UUID) -> bool:
        """Whether the subject was erased (its key deleted); False for one that never
        had a key (an account older than the sealing). As keys are read: an erasure
        made by another process is seen once the copy here expires, or this process
        reads the erasure event."""
        return self._lookup(subject) is None

    def for_writing(self, subject: UUID) -> bytes | None:
        """The subject's key, made now if it has none; None once erased."""
        key = self._lookup(subject)
        if key != _NO_KEY:
            return key
        with self._datastore.get_connection() as conn:
            conn.execute(
                f"INSERT INTO {self._table} (subject_id, wrapped_key) VALUES (%s, %s) "  # noqa: S608 - our table name
                "ON CONFLICT (subject_id) DO NOTHING",
                (subject, self._wrap(subject, os.urandom(32))),
            )
        return self._lookup(subject, cached=False) or None

    def erase(self, subject: UUID) -> None:
        """Delete the subject's key for good (idempotent)."""
        with self._datastore.get_connection() as conn:
            conn.execute(
                f"INSERT INTO {self._table} (subject_id, wrapped_key, erased_at) "  # noqa: S608
                "VALUES (%s, NULL, now()) ON CONFLICT (subject_id) DO UPDATE "
                "SET wrapped_key = NULL, "
                "erased_at = coalesce(subject_keys.erased_at, excluded.erased_at)",
                (subject,),
            )
        self.forget(subject)

    def _lookup(self, subject: UUID, cached: bool = True) -> bytes | None:
        """The key; None once erased; ``_NO_KEY`` if the subject never had one."""
        entry = self._cache.get(subject) if cached else None
        if entry is not None:
            return entry[0]
        with self._datastore.get_connection() as conn:
            row = conn.execute(
                f"SELECT wrapped_key FROM {self._table} WHERE subject_id = %s",  # noqa: S608
                (subject,),
            ).fetchone()
        key = _NO_KEY if row is None else self._unwrap(subject, row["wrapped_key"])
        self._cache.put(subject, key)
        return key

    def forget(self, subject: UUID) -> None:
        """Remember the subject as erased in this process (from its erasure event)."""
        self._cache.put(subject, None)

    def _wrap(self, subject: UUID, key: bytes) -> bytes:
        if self._wrapping is None:
            return _PLAIN + key
        nonce = os.urandom(_NONCE)
        return _WRAPPED + nonce + self._wrapping.encrypt(nonce, key, subject.bytes)

    def _unwrap(self, subject: UUID, stored: bytes | None) -> bytes | None:
        if stored is None:
            return None
        stored = bytes(stored)
        if stored[:1] == _PLAIN:
            return stored[1:]
        if self._wrapping is None:
            raise RuntimeError(
                "the data subjects' keys are wrapped under SHOP_ENCRYPTION_KEY: set it"
            )
        return self._wrapping.decrypt(stored[1 : 1 + _NONCE], stored[1 + _NONCE :], subject.bytes)

"""The event store's mapper, sealing personal fields under their subject's key
(crypto-shredding, ADR 0024).

Before an event is encoded, each field ``domain.personal_data`` names is replaced
by an envelope, ``{"_pd_": [subject, sealed]}``: the subject's id in clear (so that
a reader knows which key opens it), and the field's JSON, AES-GCM under the
subject's key, bound to the subject and the field's name (an envelope moved to
another subject or field does not open). A decoded event has its envelopes opened,
or, once the key is gone, the field's erased value in their place. The library's
own cipher (``SHOP_ENCRYPTION_KEY``) then encrypts the whole state as before.

An event stored before this mapper, or a field added to the rules later, holds the
value itself: it reads as it is (ADR 0024 says what that means for erasure).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Cipher, Compressor, Mapper, StoredEvent, Transcoder
from eventsourcing.utils import resolve_topic

from domain.actors import ACTOR, ActorKind
from domain.personal_data import ERASURES, EVENT_FIELDS, SNAPSHOT_FIELDS, PersonalFields
from infra.postgres.subject_keys import SubjectKeys

ENVELOPE = "_pd_"
_NONCE = 12
_ADDRESS = "client_address"

Sealer = Callable[[UUID, str, Any], Any]


class SealingMapper(Mapper[UUID]):
    def __init__(
        self,
        transcoder: Transcoder,
        keys: SubjectKeys,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        super().__init__(transcoder, compressor, cipher)
        self.keys = keys

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = vars(domain_event)
        sealed = _sealed_state(type(domain_event), state, self._seal)
        if sealed is state:
            return super().to_stored_event(domain_event)
        copy = object.__new__(type(domain_event))
        object.__setattr__(copy, "__dict__", sealed)
        return super().to_stored_event(copy)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        state = vars(event)
        erasure = ERASURES.get(type(event))
        if erasure is not None and (subject := erasure.subject_of(state)) is not None:
            self.keys.forget(subject)
        rules = _rules_of(type(event), state)
        if rules is not None:
            target = state["state"] if isinstance(event, Snapshot) else state
            for name, erased in rules.erased.items():
                if name in target:
                    target[name] = self._open(target[name], name, erased)
        actor = state.get(ACTOR)
        if isinstance(actor, dict) and _is_envelope(actor.get(_ADDRESS)):
            actor[_ADDRESS] = self._open(actor[_ADDRESS], _ADDRESS, lambda _s: None)
        return event

    def _seal(self, subject: UUID, name: str, value: Any) -> Any:
        key = self.keys.for_writing(subject)
        if key is None:
            return None  # the subject is erased: the caller stores the erased value
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, orjson.dumps(value), _context(subject, name))
        return {ENVELOPE: [subject.hex, base64.b64encode(nonce + sealed).decode()]}

    def _open(self, value: Any, name: str, erased: Callable[[UUID], Any]) -> Any:
        if not _is_envelope(value):
            return value  # stored before sealing
        subject_hex, text = value[ENVELOPE]
        subject = UUID(hex=subject_hex)
        key = self.keys.for_reading(subject)
        if key is None:
            return erased(subject)
        raw = base64.b64decode(text)
        return orjson.loads(
            AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], _context(subject, name))
        )


def _context(subject: UUID, name: str) -> bytes:
    return subject.bytes + name.encode()


def _is_envelope(value: Any) -> bool:
    if not (isinstance(value, dict) and len(value) == 1 and ENVELOPE in value):
        return False
    inner = value[ENVELOPE]
    return isinstance(inner, list) and len(inner) == 2 and all(isinstance(p, str) for p in inner)


def _rules_of(cls: type, state: Mapping[str, Any]) -> PersonalFields | None:
    if issubclass(cls, Snapshot):
        topic = state.get("topic")
        return SNAPSHOT_FIELDS.get(resolve_topic(topic)) if isinstance(topic, str) else None
    return EVENT_FIELDS.get(cls)


def _sealed_state(cls: type, state: dict[str, Any], seal: Sealer) -> dict[str, Any]:
    """``state`` with its personal fields sealed (a copy), or ``state`` itself when
    it has none."""
    rules = _rules_of(cls, state)
    snapshot = issubclass(cls, Snapshot)
    fields = state["state"] if snapshot and rules is not None else state
    subject = None if rules is None else (rules.subject_of(fields) or rules.subject_of(state))
    sealed = dict(state)
    changed = False
    if rules is not None and subject is not None:
        target = dict(fields) if snapshot else sealed
        for name, erased in rules.erased.items():
            if name in target and not _is_envelope(target[name]):
                envelope = seal(subject, name, target[name])
                target[name] = erased(subject) if envelope is None else envelope
                changed = True
        if snapshot:
            sealed["state"] = target
    actor = state.get(ACTOR)
    if isinstance(actor, dict) and isinstance(actor.get(_ADDRESS), str):
        owner = _actor_subject(actor) or subject
        if owner is not None:
            envelope = seal(owner, _ADDRESS, actor[_ADDRESS])
            sealed[ACTOR] = {**actor, _ADDRESS: envelope}
            changed = True
    return sealed if changed else state


def _actor_subject(actor: Mapping[str, Any]) -> UUID | None:
    if actor.get("kind") != ActorKind.USER.value or not isinstance(actor.get("id"), str):
        return None
    try:
        return UUID(actor["id"])
    except ValueError:
        return None

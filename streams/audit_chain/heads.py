"""Signed heads: every log's last link at a moment, signed with Ed25519. A signed
head is the anchor verification trusts: whoever can rewrite the database can
recompute every link, but cannot sign without the key, nor rewrite the anchor
(an append-only file, or an S3 object under Object Lock)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from streams.audit_chain.links import CHAIN_VERSION, Link


class MalformedHead(ValueError):
    """An anchored head that does not parse: damaged, or not ours."""


class ForgedHead(ValueError):
    """A head whose signature does not verify with the configured key."""


@dataclass(frozen=True)
class SignedHead:
    signed_at: datetime
    key_id: str
    """Which key signed it (``key_id``): a head signed by another key is named so."""
    logs: Mapping[str, Link]
    signature: bytes

    def payload(self) -> bytes:
        return payload(self.signed_at, self.key_id, self.logs)

    def to_json(self) -> str:
        body = json.loads(self.payload())
        body["signature"] = base64.b64encode(self.signature).decode()
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SignedHead:
        try:
            body = json.loads(text)
            if body["version"] != CHAIN_VERSION:
                raise MalformedHead(f"chain version {body['version']} is not {CHAIN_VERSION}")
            logs = {
                str(log): Link(
                    int(head["count"]), int(head["position"]), bytes.fromhex(head["link"])
                )
                for log, head in body["logs"].items()
            }
            return cls(
                signed_at=datetime.fromisoformat(body["signed_at"]),
                key_id=str(body["key_id"]),
                logs=logs,
                signature=base64.b64decode(body["signature"], validate=True),
            )
        except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as error:
            if isinstance(error, MalformedHead):
                raise
            raise MalformedHead(f"not a signed head: {type(error).__name__}: {error}") from error


def payload(signed_at: datetime, key_id: str, logs: Mapping[str, Link]) -> bytes:
    """The canonical bytes signed: sorted keys, no spaces, hex links."""
    body: dict[str, Any] = {
        "version": CHAIN_VERSION,
        "signed_at": signed_at.isoformat(),
        "key_id": key_id,
        "logs": {
            log: {"count": head.seq, "position": head.position, "link": head.link.hex()}
            for log, head in sorted(logs.items())
        },
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class HeadSigner:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.verifier = HeadVerifier(private.public_key())

    def sign(self, logs: Mapping[str, Link], at: datetime) -> SignedHead:
        kid = self.verifier.key_id
        return SignedHead(at, kid, dict(logs), self._private.sign(payload(at, kid, logs)))


class HeadVerifier:
    def __init__(self, public: Ed25519PublicKey) -> None:
        self.public = public
        self.key_id = key_id(public)

    def check(self, head: SignedHead) -> None:
        """Returns if ``head`` was signed by this key; raises ``ForgedHead`` if not."""
        try:
            self.public.verify(head.signature, head.payload())
        except InvalidSignature:
            other = "" if head.key_id == self.key_id else f" (it names key {head.key_id})"
            raise ForgedHead(
                f"the signed head of {head.signed_at.isoformat()} does not verify with "
                f"key {self.key_id}{other}"
            ) from None


def private_key(encoded: str) -> Ed25519PrivateKey:
    """An Ed25519 key from its 32 raw bytes in base64 (``new_private_key``)."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64") from error
    if len(raw) != 32:
        raise ValueError(f"{len(raw)} bytes, not 32")
    return Ed25519PrivateKey.from_private_bytes(raw)


def new_private_key() -> str:
    raw = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return base64.b64encode(raw).decode()

"""A Web Push service on loopback, strict as the browsers' ones are: it checks the
VAPID signature (RFC 8292) against the key the subscription was made for, decrypts
the aes128gcm payload (RFC 8291) with the subscriber's keys, and keeps what arrived.
``subscribe`` plays the browser: a P-256 key pair and an auth secret per subscription."""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import http_ece  # type: ignore[import-untyped]
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_VAPID = re.compile(r"vapid t=([^,\s]+),\s*k=([^,\s]+)")


@dataclass(frozen=True)
class Push:
    """One accepted message: its decrypted payload and the VAPID claims it carried."""

    subscription: str
    payload: bytes
    claims: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _Subscriber:
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    application_server_key: str
    answer: int | None = None


@dataclass
class WebPushService:
    url: str = ""
    received: list[Push] = field(default_factory=list)
    _subscribers: dict[str, _Subscriber] = field(default_factory=dict)

    def subscribe(self, application_server_key: str) -> dict[str, Any]:
        """A subscription as ``PushManager.subscribe`` gives it: endpoint and keys."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        name = uuid4().hex
        self._subscribers[name] = _Subscriber(key, auth, application_server_key)
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {
            "endpoint": f"{self.url}/push/{name}",
            "keys": {"p256dh": b64url(public), "auth": b64url(auth)},
        }

    def answer_with(self, subscription: dict[str, Any], status: int) -> None:
        """Answer every later push to it with ``status`` (410: the user unsubscribed)."""
        self._subscribers[subscription["endpoint"].rsplit("/", 1)[1]].answer = status

    def accept(self, name: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """The status to answer and why."""
        subscriber = self._subscribers.get(name)
        if subscriber is None:
            return 404, "no such subscription"
        if subscriber.answer is not None:
            return subscriber.answer, "told to"
        match = _VAPID.fullmatch(headers.get("authorization", ""))
        if match is None:
            return 401, "no VAPID authorization"
        token, key = match.groups()
        if key != subscriber.application_server_key:
            return 403, "not the key the subscription was made for"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        try:
            claims = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                audience=self.url,
                options={"require": ["aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            return 401, f"VAPID: {error}"
        if claims["exp"] > time.time() + 24 * 3600:
            return 401, "VAPID: expires more than 24 hours ahead"
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers:
            return 400, "needs Content-Encoding aes128gcm and TTL"
        try:
            payload = http_ece.decrypt(
                body,
                private_key=subscriber.private_key,
                auth_secret=subscriber.auth_secret,
                version="aes128gcm",
            )
        except Exception as error:  # noqa: BLE001 - any decryption failure is the sender's
            return 400, f"cannot decrypt: {error}"
        self.received.append(Push(name, payload, claims, headers))
        return 201, "created"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@contextmanager
def webpush_service() -> Iterator[WebPushService]:
    service = WebPushService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            name = self.path.removeprefix("/push/")
            status, reason = service.accept(name, headers, body)
            self.send_response(status, reason)
            if status == 201:
                self.send_header("Location", f"{service.url}/message/{uuid4().hex}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a line per request otherwise."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()

"""The devices a user registers for push: a browser's Web Push subscription or a
phone's APNs/FCM token. Checked when registered, so that a token that can never
be delivered to is refused at once (422) rather than stored and failing on every
notification. Pure: no I/O, no cryptography library (the point check is arithmetic)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from domain.errors import DomainError


class Platform(StrEnum):
    WEBPUSH = "webpush"
    APNS = "apns"
    FCM = "fcm"


class InvalidDevice(DomainError, ValueError):
    """A push token that is malformed for its platform (422)."""

    code = "invalid-device"


@dataclass(frozen=True)
class RegisteredDevice:
    """What a user sees of one of their devices: never the token (a subscription's
    keys let anyone who holds them push to the browser)."""

    id: UUID
    platform: str
    created_at: datetime


MAX_TOKEN = 4096
MAX_ENDPOINT = 2048
_MOBILE_TOKEN = re.compile(rf"[A-Za-z0-9:_\-.]{{1,{MAX_TOKEN}}}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})

# NIST P-256 (secp256r1): y^2 = x^3 - 3x + b over the prime field p.
_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


def valid_token(platform: Platform, token: str) -> str:
    """The token to store: for Web Push the subscription as canonical JSON (its
    endpoint and keys only, so that the same subscription sent twice is the same
    token); a mobile token as given. Raises ``InvalidDevice``."""
    if platform is Platform.WEBPUSH:
        return _web_push_subscription(token)
    if not (isinstance(token, str) and _MOBILE_TOKEN.fullmatch(token)):
        raise InvalidDevice(
            f"a {platform} token is 1 to {MAX_TOKEN} characters of letters, digits and :_-."
        )
    return token


def _web_push_subscription(token: str) -> str:
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise InvalidDevice(f"a Web Push subscription is JSON text of at most {MAX_TOKEN} chars")
    try:
        subscription: Any = json.loads(token)
    except (ValueError, RecursionError) as error:  # nested past the parser's depth
        raise InvalidDevice("a Web Push subscription is the PushSubscription's JSON") from error
    if not isinstance(subscription, dict):
        raise InvalidDevice("a Web Push subscription is an object: endpoint and keys")
    keys = subscription.get("keys")
    if not isinstance(keys, dict):
        raise InvalidDevice("a Web Push subscription has keys: p256dh and auth")
    endpoint = _push_endpoint(subscription.get("endpoint"))
    p256dh = _base64url(keys.get("p256dh"), "keys.p256dh")
    if not _is_p256_point(p256dh):
        raise InvalidDevice("keys.p256dh is not an uncompressed P-256 public key (65 bytes, 0x04)")
    auth = _base64url(keys.get("auth"), "keys.auth")
    if len(auth) != 16:
        raise InvalidDevice("keys.auth is a 16-byte secret")
    canonical = {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}
    return json.dumps(canonical, separators=(",", ":"), sort_keys=True)


def _push_endpoint(endpoint: object) -> str:
    """An https URL (the push service's); plain http only to this machine (a local
    push service in development and tests)."""
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= MAX_ENDPOINT:
        raise InvalidDevice(f"endpoint is a URL of at most {MAX_ENDPOINT} characters")
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises on a port out of range or not a number
    except ValueError as error:
        raise InvalidDevice("endpoint is not a URL") from error
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None:
        raise InvalidDevice("endpoint is an https URL with a host and no credentials")
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return endpoint
    raise InvalidDevice("endpoint is an https URL (http only to the loopback address)")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base64url(value: object, name: str) -> bytes:
    """Base64url (RFC 4648 section 5), padded or not, as browsers give the keys."""
    if not isinstance(value, str) or len(value) > 200 or not _BASE64URL.fullmatch(value):
        raise InvalidDevice(f"{name} is base64url")
    unpadded = value.rstrip("=")
    try:
        return base64.b64decode(
            unpadded + "=" * (-len(unpadded) % 4), altchars=b"-_", validate=True
        )
    except (binascii.Error, ValueError) as error:
        raise InvalidDevice(f"{name} is base64url") from error


def _is_p256_point(data: bytes) -> bool:
    """An uncompressed point (0x04 || x || y) on P-256: what the payload is
    encrypted to (RFC 8291); a key off the curve could never be used."""
    if len(data) != 65 or data[0] != 0x04:
        return False
    x, y = int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big")
    if x >= _P or y >= _P:
        return False
    return (y * y - (x * x * x - 3 * x + _B)) % _P == 0

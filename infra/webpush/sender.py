"""Web Push to a browser's subscription: the payload encrypted to the subscription's
keys, signed with the shop's VAPID key, posted to the push service's endpoint."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid, VapidException  # type: ignore[import-untyped]
from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]

from commands.notifications.ports import (
    DeviceGone,
    Devices,
    Outgoing,
    PermanentFailure,
    TransientFailure,
)
from commands.notifications.push import device_of


class WebPushSender:
    def __init__(
        self,
        devices: Devices,
        vapid_private_key: str,
        subject: str,
        ttl: int = 86400,
        timeout: float = 10.0,
    ) -> None:
        """``vapid_private_key``: raw base64url, PEM text, or the path of a PEM file;
        ``subject``: the ``mailto:`` or ``https:`` contact push services may use."""
        if not subject.startswith(("mailto:", "https:")):
            raise ValueError("the VAPID subject must be a mailto: or https: URL")
        self._devices = devices
        self._vapid = _vapid(vapid_private_key)
        self._subject = subject
        self._ttl = ttl
        self._timeout = timeout
        self._session = requests.Session()  # keeps connections to each push service

    def send(self, outgoing: Outgoing) -> str:
        device = device_of(self._devices, outgoing.address)
        content = outgoing.content
        payload = {
            "title": content.subject,
            "body": content.text,
            "link": content.link,
            "notification_id": str(outgoing.notification_id),
        }
        try:
            response = webpush(
                _subscription(device.token),
                data=json.dumps(payload),
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._subject},  # webpush adds aud and exp to it
                ttl=self._ttl,
                timeout=self._timeout,
                requests_session=self._session,
            )
        except WebPushException as error:
            raise _failure(error) from error
        except (ValueError, VapidException) as error:
            # keys that do not decode or are not on the curve, an endpoint that is no URL
            raise DeviceGone(f"unusable subscription: {error}") from error
        except requests.RequestException as error:  # refused, reset, timed out
            raise TransientFailure(f"Web Push: {type(error).__name__}: {error}") from error
        location: str | None = response.headers.get("Location")
        return location or f"webpush:{outgoing.delivery_id}"


def _vapid(key: str) -> Any:
    if key.lstrip().startswith("-----BEGIN"):
        return Vapid.from_pem(key.encode())
    if Path(key).is_file():
        return Vapid.from_file(key)
    return Vapid.from_string(key)


def _subscription(token: str) -> dict[str, Any]:
    """A subscription we cannot use can never be delivered to: the device is gone."""
    try:
        subscription = json.loads(token)
    except ValueError as error:
        raise DeviceGone("the subscription is not JSON") from error
    keys = subscription.get("keys") if isinstance(subscription, dict) else None
    if not (
        isinstance(keys, dict)
        and isinstance(subscription.get("endpoint"), str)
        and all(isinstance(keys.get(name), str) for name in ("p256dh", "auth"))
    ):
        raise DeviceGone("the subscription lacks its endpoint or keys")
    return dict(subscription)


def _failure(error: WebPushException) -> PermanentFailure | TransientFailure:
    status = error.status_code
    if status is None:  # raised before any request: the subscription's keys are unusable
        return DeviceGone(f"unusable subscription: {error.message}")
    reason = f"Web Push {status}: {error.message}"
    if status in (404, 410):
        return DeviceGone(reason)
    if status == 429 or status >= 500:
        return TransientFailure(reason)
    return PermanentFailure(reason)


def new_vapid_keys() -> tuple[str, str]:
    """A VAPID key pair: the private key (raw, base64url) for ``WebPushSender``, and
    the application server key (the uncompressed public point, base64url) browsers
    subscribe with."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return _b64url(private), _b64url(public)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

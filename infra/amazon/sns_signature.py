"""Amazon SNS message signatures, verified as AWS documents them
(https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):

- the string to sign is ``name\\nvalue\\n`` for each signed field, in byte order of
  the names: Message, MessageId, Subject (only when present), Timestamp, TopicArn,
  Type for a Notification; Message, MessageId, SubscribeURL, Timestamp, Token,
  TopicArn, Type for a (Un)SubscriptionConfirmation;
- ``Signature`` is base64 of an RSA PKCS#1 v1.5 signature over it, SHA1 when
  ``SignatureVersion`` is 1, SHA256 when 2;
- the public key is in the X.509 certificate at ``SigningCertURL``, which must be
  HTTPS on an SNS host (``sns.<region>.amazonaws.com``, ``.amazonaws.com.cn`` in
  China): anyone can sign with a certificate of their own, so where it comes from
  is what makes the signature SNS's.

A certificate is fetched once per URL and kept (SNS rotates them by publishing at a
new URL). Only the configured topics are trusted: a valid signature proves SNS sent
it, not that it is our topic. The fetcher and the HTTP getter are injected so tests
serve their own certificate and never reach AWS.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from commands.notifications.feedback import (
    Envelope,
    MessageType,
    SnsUnavailable,
    UntrustedMessage,
)

Fetch = Callable[[str], bytes]
"""The PEM certificate at a URL."""
Get = Callable[[str], None]
"""GET a URL; raises on failure."""

_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SUBSCRIPTION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_TIMEOUT = httpx.Timeout(5.0)
_MAX_CERTIFICATE_BYTES = 64 * 1024


def is_sns_url(url: str) -> bool:
    """HTTPS on an SNS host, on the default port, with no credentials in it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port is None
        and parts.username is None
        and parts.password is None
        and parts.hostname is not None
        and _SNS_HOST.fullmatch(parts.hostname) is not None
    )


def string_to_sign(envelope: Envelope) -> bytes:
    keys = _NOTIFICATION_KEYS if envelope.type is MessageType.NOTIFICATION else _SUBSCRIPTION_KEYS
    fields = envelope.fields
    return "".join(f"{key}\n{fields[key]}\n" for key in keys if key in fields).encode()


def fetch_certificate(url: str) -> bytes:
    """The certificate over HTTPS, no redirects followed (they could leave SNS)."""
    with (
        httpx.Client(timeout=_TIMEOUT, follow_redirects=False) as client,
        client.stream("GET", url) as response,
    ):
        response.raise_for_status()
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > _MAX_CERTIFICATE_BYTES:
                raise httpx.HTTPError(f"the certificate at {url} is over the size limit")
        return body


def get_url(url: str) -> None:
    httpx.get(url, timeout=_TIMEOUT, follow_redirects=False).raise_for_status()


class SnsSignatures:
    """``commands.notifications.feedback.SnsMessages`` for the allowed topics."""

    def __init__(
        self,
        allowed_topics: Collection[str],
        fetch: Fetch = fetch_certificate,
        get: Get = get_url,
    ) -> None:
        self._topics = frozenset(allowed_topics)
        self._fetch = fetch
        self._get = get
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def verify(self, envelope: Envelope) -> None:
        if envelope.topic_arn not in self._topics:
            raise UntrustedMessage("the topic is not one this shop subscribed to")
        algorithm = _HASHES.get(envelope.signature_version)
        if algorithm is None:
            raise UntrustedMessage("the SignatureVersion is not 1 or 2")
        if not is_sns_url(envelope.signing_cert_url):
            raise UntrustedMessage("the SigningCertURL is not an HTTPS URL of SNS")
        try:
            signature = base64.b64decode(envelope.signature, validate=True)
        except binascii.Error:
            raise UntrustedMessage("the Signature is not base64") from None
        key = self._key(envelope.signing_cert_url)
        try:
            key.verify(signature, string_to_sign(envelope), padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise UntrustedMessage("the signature does not match the message") from None

    def confirm_subscription(self, envelope: Envelope) -> None:
        if envelope.topic_arn not in self._topics:
            raise UntrustedMessage("the topic is not one this shop subscribed to")
        if not is_sns_url(envelope.subscribe_url):
            raise UntrustedMessage("the SubscribeURL is not an HTTPS URL of SNS")
        try:
            self._get(envelope.subscribe_url)
        except httpx.HTTPError as error:
            raise SnsUnavailable(f"the subscription could not be confirmed: {error}") from error

    def _key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:  # one fetch per URL, even when deliveries arrive together
            if (cached := self._keys.get(url)) is not None:
                return cached
            try:
                pem = self._fetch(url)
            except httpx.HTTPError as error:
                raise SnsUnavailable(f"the signing certificate is unavailable: {error}") from error
            try:
                key = x509.load_pem_x509_certificate(pem).public_key()
            except ValueError:
                raise UntrustedMessage("the SigningCertURL holds no certificate") from None
            if not isinstance(key, rsa.RSAPublicKey):
                raise UntrustedMessage("the signing certificate's key is not RSA")
            self._keys[url] = key
            return key

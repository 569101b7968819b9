"""One-click unsubscribe from marketing mail (RFC 8058): each marketing mail carries
``List-Unsubscribe`` with a link naming its address, signed, and
``List-Unsubscribe-Post``; the mail provider POSTs to the link and the address goes
on the suppression list for marketing. No login: the signature is the proof that
the link came from a mail to that address.

The token is ``<address, base64url>.<HMAC-SHA256, base64url>``: no expiry (a link
in an old mail must still work), compared in constant time. The MAC covers a
purpose prefix, so no other token signed with the same secret passes for one."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import quote

from domain.errors import InvalidToken

UNSUBSCRIBE_PATH = "/notifications/unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"
MAX_TOKEN = 600
"""Room for the longest address (254 characters) and the MAC."""
_PURPOSE = b"eventshop/unsubscribe:"


class UnsubscribeSigner:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def token(self, address: str) -> str:
        normalised = _normalise(address)
        return f"{_b64(normalised.encode())}.{_b64(self._mac(normalised))}"

    def address(self, token: str) -> str:
        """The address a genuine token names; ``InvalidToken`` for any other."""
        encoded, dot, mac = token.partition(".") if len(token) <= MAX_TOKEN else ("", "", "")
        if not (dot and encoded and mac):
            raise InvalidToken("this unsubscribe link is invalid")
        try:
            address = _unb64(encoded).decode("utf-8")
            given = _unb64(mac)
        except (binascii.Error, ValueError) as error:  # also UnicodeDecodeError
            raise InvalidToken("this unsubscribe link is invalid") from error
        if address != _normalise(address) or not hmac.compare_digest(given, self._mac(address)):
            raise InvalidToken("this unsubscribe link is invalid")
        return address

    def _mac(self, address: str) -> bytes:
        return hmac.new(self._secret, _PURPOSE + address.encode(), hashlib.sha256).digest()


def unsubscribe_headers(
    public_url: str, signer: UnsubscribeSigner
) -> Callable[[str], dict[str, str]]:
    """The headers of a marketing mail to an address, for ``Deliverer``'s
    ``unsubscribe_headers``. The sender must DKIM-sign them (RFC 8058 section 4),
    as SES does."""
    base = public_url.rstrip("/") + UNSUBSCRIBE_PATH

    def headers(address: str) -> dict[str, str]:
        link = f"{base}?token={quote(signer.token(address), safe='')}"
        return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": ONE_CLICK}

    return headers


def _normalise(address: str) -> str:
    """As the suppression list keys addresses."""
    return address.strip().lower()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not base64url")
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

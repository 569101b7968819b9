"""Guest cart tokens: how an unauthenticated shopper holds on to their cart.

A guest cart's id is drawn at random; the client gets ``<id>.<mac>``, the id signed
with the server's secret (HMAC-SHA256, truncated to 128 bits). The write side and
the read side both check the signature before touching a cart, so a made-up or
altered token is refused without a lookup. Pure: the key is an argument.
"""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID

from domain.errors import InvalidToken

_PURPOSE = b"eventshop/guest-cart/v1:"


def _mac(key: bytes, cart_id: UUID) -> str:
    return hmac.new(key, _PURPOSE + cart_id.bytes, hashlib.sha256).hexdigest()[:32]


def guest_cart_token(key: bytes, cart_id: UUID) -> str:
    return f"{cart_id}.{_mac(key, cart_id)}"


def read_guest_cart_token(key: bytes, token: str) -> UUID:
    """The cart id a token names; ``InvalidToken`` when it is not one we issued."""
    cart_text, _, mac = token.partition(".")
    try:
        cart_id = UUID(cart_text)
    except ValueError as error:
        raise InvalidToken("not a cart token this shop issued") from error
    if not hmac.compare_digest(mac, _mac(key, cart_id)):
        raise InvalidToken("not a cart token this shop issued")
    return cart_id

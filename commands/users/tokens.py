"""Tokens: JWT access and refresh tokens, and the single-use links sent by email.

Email links carry ``<user id>.<token id>.<HMAC>``: the event log stores only the token id,
so reading the log is not enough to forge a link; the HMAC needs the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import jwt

from domain.errors import AuthenticationRequired, InvalidToken
from domain.users import TokenPurpose

_ALGORITHM = "HS256"
VERIFIED_TOKENS = 50_000
"""Verified access tokens remembered at most (about 300 bytes each)."""
_ISSUER = "eventshop"


@dataclass(frozen=True)
class AccessClaims:
    user_id: UUID
    session_id: UUID


@dataclass(frozen=True)
class RefreshClaims:
    user_id: UUID
    session_id: UUID
    generation: int


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


class TokenCodec:
    def __init__(self, secret: str, access_ttl: timedelta, refresh_ttl: timedelta) -> None:
        self._secret = secret.encode()
        self._verified: dict[str, tuple[AccessClaims, float]] = {}
        """Access tokens that verified: their claims and expiry (``read_access``)."""
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    # --- JWT --------------------------------------------------------------

    def issue(
        self, user_id: UUID, session_id: UUID, generation: int, now: datetime
    ) -> IssuedTokens:
        access = self._encode(
            {"typ": "access", "sub": str(user_id), "sid": str(session_id)}, now, self.access_ttl
        )
        refresh = self._encode(
            {"typ": "refresh", "sub": str(user_id), "sid": str(session_id), "gen": generation},
            now,
            self.refresh_ttl,
        )
        return IssuedTokens(access, refresh, int(self.access_ttl.total_seconds()))

    def read_access(self, token: str) -> AccessClaims:
        """The claims of a genuine, unexpired access token. Each request checks its
        token twice (the route limits key on its user, the route authenticates), and
        a client sends the same one for minutes: a token that verified is
        remembered with its expiry, so a repeat costs a lookup and a clock read
        instead of PyJWT's parsing and HMAC. Only the signature and expiry are
        remembered: whether the session is live (logout, deactivation, erasure) is
        the authenticator's question, asked at every request as before."""
        known = self._verified.get(token)
        if known is not None:
            claims, expires = known
            if time.time() < expires:
                return claims
            self._verified.pop(token, None)
        decoded = self._decode(token, "access")
        claims = AccessClaims(_uuid(decoded, "sub"), _uuid(decoded, "sid"))
        if len(self._verified) >= VERIFIED_TOKENS:
            self._verified.clear()  # bounded: at worst, every token verifies once more
        self._verified[token] = (claims, float(decoded["exp"]))
        return claims

    def read_refresh(self, token: str) -> RefreshClaims:
        claims = self._decode(token, "refresh")
        generation = claims.get("gen")
        if not isinstance(generation, int):
            raise AuthenticationRequired("the token is malformed")
        return RefreshClaims(_uuid(claims, "sub"), _uuid(claims, "sid"), generation)

    def _encode(self, claims: dict[str, Any], now: datetime, ttl: timedelta) -> str:
        payload = {**claims, "iss": _ISSUER, "iat": now, "exp": now + ttl}
        return jwt.encode(payload, self._secret, algorithm=_ALGORITHM)

    def _decode(self, token: str, typ: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "typ"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthenticationRequired("the token has expired") from error
        except jwt.InvalidTokenError as error:
            raise AuthenticationRequired("the token is invalid") from error
        if claims["typ"] != typ:
            raise AuthenticationRequired(f"expected an {typ} token")
        return claims

    # --- email links --------------------------------------------------------

    def link_token(self, purpose: TokenPurpose, user_id: UUID, token_id: UUID) -> str:
        return f"{user_id}.{token_id}.{self._link_mac(purpose, user_id, token_id)}"

    def read_link_token(self, purpose: TokenPurpose, token: str) -> tuple[UUID, UUID]:
        """The (user id, token id) a genuine link names; InvalidToken otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("this link is invalid")
        try:
            user_id, token_id = UUID(parts[0]), UUID(parts[1])
        except ValueError as error:
            raise InvalidToken("this link is invalid") from error
        expected = self._link_mac(purpose, user_id, token_id)
        if not hmac.compare_digest(parts[2].encode(), expected.encode()):
            raise InvalidToken("this link is invalid")
        return user_id, token_id

    def _link_mac(self, purpose: TokenPurpose, user_id: UUID, token_id: UUID) -> str:
        message = f"{purpose.value}:{user_id}:{token_id}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _uuid(claims: dict[str, Any], name: str) -> UUID:
    try:
        return UUID(str(claims[name]))
    except (KeyError, ValueError) as error:
        raise AuthenticationRequired("the token is malformed") from error

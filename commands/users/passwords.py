"""Password hashing (argon2id) and the strength policy applied at registration and reset."""

from __future__ import annotations

import re

import argon2
from zxcvbn import zxcvbn

from commands.errors import WeakPassword

MIN_LENGTH = 10
MAX_LENGTH = 128  # argon2 hashes any length, but unbounded input invites CPU abuse
_ESTIMATE_CHARS = 64  # zxcvbn's cost grows with length; the first 64 chars decide
MIN_SCORE = 3  # zxcvbn: "safely unguessable: moderate protection from offline attacks"


class PasswordHasher:
    """argon2id at OWASP's minimum (19 MiB, t=2, p=1) unless told otherwise."""

    def __init__(
        self, time_cost: int = 2, memory_kib: int = 19 * 1024, parallelism: int = 1
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when the account does not exist, so that a login for an
        # unknown address costs the same time as one for a known address.
        self._decoy = self._hasher.hash("decoy password, never matches")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._decoy, password) and (
                password_hash is not None
            )
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def check_password_strength(password: str, *, email: str, name: str) -> None:
    """Refuse short, overlong, common or personal passwords, saying why."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"use at most {MAX_LENGTH} characters")
    local_part = email.split("@")[0]
    personal = [email, local_part, *re.split(r"[.\-_+]", local_part), name, *name.split()]
    result = zxcvbn(password[:_ESTIMATE_CHARS], user_inputs=personal)
    if result["score"] < MIN_SCORE:
        feedback = result.get("feedback") or {}
        hints = [feedback.get("warning") or "", *(feedback.get("suggestions") or [])]
        reason = " ".join(h for h in hints if h) or "it is too easy to guess"
        raise WeakPassword(f"this password is too weak: {reason}")

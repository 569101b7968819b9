"""TokenCodec (JWT access/refresh tokens, HMAC'd email links), the argon2id hasher,
and the password strength policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.errors import WeakPassword
from commands.users.passwords import MAX_LENGTH, MIN_LENGTH, PasswordHasher, check_password_strength
from commands.users.tokens import AccessClaims, RefreshClaims, TokenCodec
from domain.errors import AuthenticationRequired, InvalidToken
from domain.users import TokenPurpose

SECRET = "unit-test-secret-" + "k" * 32
ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)


def codec(secret: str = SECRET) -> TokenCodec:
    return TokenCodec(secret, ACCESS_TTL, REFRESH_TTL)


def now() -> datetime:
    # PyJWT checks exp and iat against the wall clock.
    return datetime.now(UTC)


def tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    # Change the first character: every base64url character but the last carries 6
    # whole bits, so this always changes the decoded signature.
    first = "A" if signature[0] != "A" else "B"
    return f"{header}.{payload}.{first}{signature[1:]}"


# --- JWT ------------------------------------------------------------------------


@given(user_id=st.uuids(), session_id=st.uuids(), generation=st.integers(1, 2**31))
@settings(max_examples=30)
def test_issued_tokens_read_back(user_id: UUID, session_id: UUID, generation: int) -> None:
    tokens = codec().issue(user_id, session_id, generation, now())
    assert tokens.expires_in == ACCESS_TTL.total_seconds()
    assert codec().read_access(tokens.access_token) == AccessClaims(user_id, session_id)
    assert codec().read_refresh(tokens.refresh_token) == RefreshClaims(
        user_id, session_id, generation
    )


def test_a_tampered_signature_is_refused() -> None:
    tokens = codec().issue(uuid4(), uuid4(), 1, now())
    with pytest.raises(AuthenticationRequired):
        codec().read_access(tamper_signature(tokens.access_token))
    with pytest.raises(AuthenticationRequired):
        codec().read_refresh(tamper_signature(tokens.refresh_token))


def test_a_tampered_payload_is_refused() -> None:
    token = codec().issue(uuid4(), uuid4(), 1, now()).access_token
    header, _, signature = token.split(".")
    forged = _signed({"typ": "access", "sub": str(uuid4()), "sid": str(uuid4())}).split(".")[1]
    with pytest.raises(AuthenticationRequired):
        codec().read_access(f"{header}.{forged}.{signature}")


def test_a_token_signed_with_another_secret_is_refused() -> None:
    tokens = codec("another-secret-" + "z" * 32).issue(uuid4(), uuid4(), 1, now())
    with pytest.raises(AuthenticationRequired):
        codec().read_access(tokens.access_token)
    with pytest.raises(AuthenticationRequired):
        codec().read_refresh(tokens.refresh_token)


def test_an_expired_token_is_refused() -> None:
    issued_at = now() - REFRESH_TTL - timedelta(minutes=1)
    tokens = codec().issue(uuid4(), uuid4(), 1, issued_at)
    with pytest.raises(AuthenticationRequired, match="expired"):
        codec().read_access(tokens.access_token)
    with pytest.raises(AuthenticationRequired, match="expired"):
        codec().read_refresh(tokens.refresh_token)


def test_an_access_token_expires_before_its_refresh_token() -> None:
    tokens = codec().issue(uuid4(), uuid4(), 1, now() - ACCESS_TTL - timedelta(seconds=5))
    with pytest.raises(AuthenticationRequired):
        codec().read_access(tokens.access_token)
    assert codec().read_refresh(tokens.refresh_token).generation == 1


def test_a_token_of_the_wrong_type_is_refused() -> None:
    tokens = codec().issue(uuid4(), uuid4(), 1, now())
    with pytest.raises(AuthenticationRequired):
        codec().read_access(tokens.refresh_token)
    with pytest.raises(AuthenticationRequired):
        codec().read_refresh(tokens.access_token)


def _signed(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    t = now()
    payload = {"iss": "eventshop", "iat": t, "exp": t + ACCESS_TTL, **claims}
    return jwt.encode(payload, secret, algorithm=algorithm)


@pytest.mark.parametrize(
    "claims",
    [
        {"typ": "refresh", "sub": str(uuid4()), "sid": str(uuid4())},  # no generation
        {"typ": "refresh", "sub": str(uuid4()), "sid": str(uuid4()), "gen": "1"},
        {"typ": "refresh", "sub": "not-a-uuid", "sid": str(uuid4()), "gen": 1},
        {"typ": "refresh", "sub": str(uuid4()), "sid": "x", "gen": 1},
        {"typ": "refresh", "sid": str(uuid4()), "gen": 1},  # no subject
        {"typ": "refresh", "sub": str(uuid4()), "sid": str(uuid4()), "gen": 1, "iss": "evil"},
    ],
)
def test_a_malformed_refresh_token_is_refused(claims: dict[str, object]) -> None:
    with pytest.raises(AuthenticationRequired):
        codec().read_refresh(_signed(claims))


def test_an_unsigned_token_is_refused() -> None:
    token = _signed(
        {"typ": "access", "sub": str(uuid4()), "sid": str(uuid4())}, secret="", algorithm="none"
    )
    with pytest.raises(AuthenticationRequired):
        codec().read_access(token)


@given(garbage=st.text(max_size=200))
@settings(max_examples=200)
def test_garbage_is_never_anything_but_unauthenticated(garbage: str) -> None:
    with pytest.raises(AuthenticationRequired):
        codec().read_access(garbage)
    with pytest.raises(AuthenticationRequired):
        codec().read_refresh(garbage)


# --- email links ----------------------------------------------------------------


@given(purpose=st.sampled_from(TokenPurpose), user_id=st.uuids(), token_id=st.uuids())
@settings(max_examples=50)
def test_a_link_token_reads_back(purpose: TokenPurpose, user_id: UUID, token_id: UUID) -> None:
    token = codec().link_token(purpose, user_id, token_id)
    assert codec().read_link_token(purpose, token) == (user_id, token_id)


@given(user_id=st.uuids(), token_id=st.uuids())
@settings(max_examples=20)
def test_a_link_token_serves_only_its_purpose(user_id: UUID, token_id: UUID) -> None:
    token = codec().link_token(TokenPurpose.VERIFY_EMAIL, user_id, token_id)
    with pytest.raises(InvalidToken):
        codec().read_link_token(TokenPurpose.RESET_PASSWORD, token)


def test_a_tampered_link_token_is_refused() -> None:
    user_id, token_id = uuid4(), uuid4()
    token = codec().link_token(TokenPurpose.RESET_PASSWORD, user_id, token_id)
    _, _, mac = token.split(".")
    for forged in [
        f"{user_id}.{token_id}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}",  # MAC changed
        f"{uuid4()}.{token_id}.{mac}",  # another user
        f"{user_id}.{uuid4()}.{mac}",  # another token
        f"{token_id}.{user_id}.{mac}",  # swapped
        f"{user_id}.{token_id}.",  # no MAC
        f"{user_id}.{token_id}",  # two parts
        f"{token}.extra",  # four parts
        codec("another-secret-" + "z" * 32).link_token(
            TokenPurpose.RESET_PASSWORD, user_id, token_id
        ),
    ]:
        with pytest.raises(InvalidToken):
            codec().read_link_token(TokenPurpose.RESET_PASSWORD, forged)


@given(purpose=st.sampled_from(TokenPurpose), garbage=st.text(max_size=200))
@settings(max_examples=200)
def test_garbage_links_are_never_anything_but_invalid(purpose: TokenPurpose, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        codec().read_link_token(purpose, garbage)


# Strings that parse as UUIDs, including the forms uuid.UUID also accepts (braces,
# urn prefix, no hyphens, non-ASCII digits int() understands).
uuid_texts = st.uuids().flatmap(
    lambda u: st.sampled_from(
        [str(u), u.hex, f"{{{u}}}", f"urn:uuid:{u}", str(u).upper()]
        + (["\u0660" * 32] if u.int % 7 == 0 else [])
    )
)


@given(
    purpose=st.sampled_from(TokenPurpose),
    user_part=uuid_texts,
    token_part=uuid_texts,
    mac=st.text(max_size=60),
)
@settings(max_examples=200)
def test_well_formed_ids_with_a_garbage_mac_are_invalid(
    purpose: TokenPurpose, user_part: str, token_part: str, mac: str
) -> None:
    """Regression: a non-ASCII MAC used to make hmac.compare_digest raise TypeError."""
    with pytest.raises(InvalidToken):
        codec().read_link_token(purpose, f"{user_part}.{token_part}.{mac}")


def test_a_non_ascii_mac_is_invalid_not_a_crash() -> None:
    with pytest.raises(InvalidToken):
        codec().read_link_token(TokenPurpose.VERIFY_EMAIL, f"{uuid4()}.{uuid4()}.é")


# --- hashing --------------------------------------------------------------------


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()  # the production parameters: a few hashes only


def test_the_hasher_verifies_the_right_password_only(hasher: PasswordHasher) -> None:
    password_hash = hasher.hash("marmalade-typhoon-quietly-47")
    assert password_hash.startswith("$argon2id$")
    assert hasher.verify(password_hash, "marmalade-typhoon-quietly-47")
    assert not hasher.verify(password_hash, "marmalade-typhoon-quietly-48")
    assert not hasher.verify(password_hash, "")
    assert not hasher.needs_rehash(password_hash)


def test_hashes_are_salted(hasher: PasswordHasher) -> None:
    assert hasher.hash("same password twice") != hasher.hash("same password twice")


def test_no_hash_never_verifies(hasher: PasswordHasher) -> None:
    assert hasher.verify(None, "anything at all") is False
    assert hasher.verify(None, "") is False
    # Not even the decoy's own password.
    assert hasher.verify(None, "decoy password, never matches") is False


@pytest.mark.parametrize("bad_hash", ["", "not a hash", "$argon2id$v=19$m=1,t=1,p=1$broken"])
def test_a_broken_hash_does_not_verify(hasher: PasswordHasher, bad_hash: str) -> None:
    assert hasher.verify(bad_hash, "whatever") is False


def test_a_hash_with_weaker_parameters_needs_rehashing(hasher: PasswordHasher) -> None:
    weak = PasswordHasher(time_cost=1, memory_kib=8, parallelism=1)
    password_hash = weak.hash("marmalade-typhoon-quietly-47")
    assert hasher.verify(password_hash, "marmalade-typhoon-quietly-47")  # still verifies
    assert hasher.needs_rehash(password_hash)


# --- strength policy ------------------------------------------------------------

STRONG = "marmalade-typhoon-quietly-47"


def test_a_strong_passphrase_is_accepted() -> None:
    check_password_strength(STRONG, email="ann@example.com", name="Ann Smith")
    check_password_strength(
        "correct horse battery staple tangerine", email="ann@example.com", name="Ann"
    )


@given(password=st.text(max_size=MIN_LENGTH - 1))
@settings(max_examples=50)
def test_short_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword, match="at least"):
        check_password_strength(password, email="ann@example.com", name="Ann")


@given(extra=st.text(min_size=1, max_size=50))
@settings(max_examples=30)
def test_overlong_passwords_are_refused(extra: str) -> None:
    password = (STRONG * 5)[:MAX_LENGTH] + extra
    with pytest.raises(WeakPassword, match="at most"):
        check_password_strength(password, email="ann@example.com", name="Ann")


def test_the_longest_allowed_password_is_accepted() -> None:
    password = (STRONG * 5)[:MAX_LENGTH]
    assert len(password) == MAX_LENGTH
    check_password_strength(password, email="ann@example.com", name="Ann")


@pytest.mark.parametrize(
    "password", ["password123456", "qwertyuiop123", "1234567890", "aaaaaaaaaaaa", "iloveyou2024"]
)
def test_common_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword, match="too weak"):
        check_password_strength(password, email="ann@example.com", name="Ann")


def test_a_password_built_on_the_email_address_is_refused() -> None:
    password = "zanzibarquokka2024!"
    # Strong enough for somebody else...
    check_password_strength(password, email="ann@example.com", name="Ann")
    # ...but not for the owner of the address it is built on.
    with pytest.raises(WeakPassword):
        check_password_strength(password, email="zanzibarquokka@example.com", name="Ann")
    with pytest.raises(WeakPassword):
        check_password_strength(password, email="ZanzibarQuokka@Example.com", name="Ann")


def test_a_password_built_on_a_one_word_name_is_refused() -> None:
    with pytest.raises(WeakPassword):
        check_password_strength(
            "zanzibarquokka2024!", email="ann@example.com", name="Zanzibarquokka"
        )


def test_a_password_built_on_a_word_of_the_name_is_refused() -> None:
    with pytest.raises(WeakPassword):
        check_password_strength(
            "zanzibarquokka2024!", email="ann@example.com", name="Ann Zanzibarquokka"
        )


def test_a_password_built_on_a_word_of_the_local_part_is_refused() -> None:
    with pytest.raises(WeakPassword):
        check_password_strength(
            "zanzibarquokka2024!", email="ann.zanzibarquokka@example.com", name="Ann"
        )


def test_a_remembered_access_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified tokens are remembered (``read_access``), with their expiry: once it
    passes, the remembered token is refused as PyJWT refuses it."""
    import time

    codec_ = codec()
    issued = codec_.issue(uuid4(), uuid4(), 1, now())
    first = codec_.read_access(issued.access_token)
    assert codec_.read_access(issued.access_token) == first  # remembered
    later = now().timestamp() + ACCESS_TTL.total_seconds() + 1
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _FrozenDatetime(later), raising=False)
    with pytest.raises(AuthenticationRequired):
        codec_.read_access(issued.access_token)


class _FrozenDatetime:
    def __init__(self, at: float) -> None:
        self._at = at

    def now(self, tz: object = None) -> datetime:
        return datetime.fromtimestamp(self._at, UTC)


def test_a_forged_token_is_never_remembered() -> None:
    issued = codec().issue(uuid4(), uuid4(), 1, now())
    forged = issued.access_token[:-2] + ("AA" if not issued.access_token.endswith("AA") else "BB")
    c = codec()
    for _ in range(2):
        with pytest.raises(AuthenticationRequired):
            c.read_access(forged)

"""UserCommands against the in-memory (POPO) event store, and retry_on_conflict."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from commands.application import CONFLICT_ATTEMPTS, Written, retry_on_conflict
from commands.errors import ConcurrencyConflict, EmailTaken, InvalidCredentials, WeakPassword
from commands.users.accounts import ACCESS_VIEW, UserCommands, UsersApplication
from commands.users.passwords import PasswordHasher
from commands.users.tokens import TokenCodec
from domain.errors import (
    AccountInactive,
    AuthenticationRequired,
    EmailNotVerified,
    InvalidToken,
    NotPermitted,
    SessionEnded,
    UnknownEntity,
)
from domain.positions import Position
from domain.sessions import Rotation, Session
from domain.users import Role, TokenPurpose, User, email_index_id

PASSWORD = "marmalade-typhoon-quietly-47"
NEW_PASSWORD = "tangerine-glacier-hopscotch-19"
EMAIL = "Ann.Smith@Example.com"


class FakeWaiter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Position], float]] = []

    def wait(self, projection: str, positions: list[Position], timeout: float) -> bool:
        self.calls.append((projection, positions, timeout))
        return True


class FakeKeys:
    def __init__(self) -> None:
        self.erased: list[UUID] = []

    def erase(self, subject: UUID) -> None:
        self.erased.append(subject)


class FakeClock:
    """The wall clock (PyJWT checks tokens against it) plus an adjustable offset."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_kib=8, parallelism=1)  # cheap for tests


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec("unit-test-secret-" + "k" * 32, timedelta(minutes=15), timedelta(days=30))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def waiter() -> FakeWaiter:
    return FakeWaiter()


@pytest.fixture
def keys() -> FakeKeys:
    return FakeKeys()


@pytest.fixture
def app() -> UsersApplication:
    return UsersApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
def commands(
    app: UsersApplication,
    hasher: PasswordHasher,
    codec: TokenCodec,
    clock: FakeClock,
    waiter: FakeWaiter,
    keys: FakeKeys,
) -> UserCommands:
    return UserCommands(app, hasher, codec, clock, waiter, keys)


def load_user(app: UsersApplication, user_id: UUID) -> User:
    user: User = app.repository.get(user_id)
    return user


def link(app: UsersApplication, codec: TokenCodec, purpose: TokenPurpose, user_id: UUID) -> str:
    """The link the mailer would send: built from the pending token's id."""
    pending = load_user(app, user_id).pending_tokens[purpose.value]
    return codec.link_token(purpose, user_id, pending["token_id"])


@pytest.fixture
def verified_user(commands: UserCommands, app: UsersApplication, codec: TokenCodec) -> UUID:
    user_id = commands.register(uuid4(), EMAIL, PASSWORD, "Ann").id
    commands.verify_email(link(app, codec, TokenPurpose.VERIFY_EMAIL, user_id))
    return user_id


# --- registration ---------------------------------------------------------------


def test_register_creates_an_unverified_user_with_a_pending_verification(
    commands: UserCommands, app: UsersApplication, hasher: PasswordHasher
) -> None:
    user_id = uuid4()
    written = commands.register(user_id, EMAIL, PASSWORD, "Ann")
    assert written.id == user_id
    assert written.position is not None and written.position.log == "users"
    user = load_user(app, user_id)
    assert user.email == "ann.smith@example.com"
    assert not user.email_verified
    assert TokenPurpose.VERIFY_EMAIL.value in user.pending_tokens
    assert hasher.verify(user.password_hash, PASSWORD)
    assert app.repository.get(email_index_id(EMAIL)).user_id == user_id


def test_registering_an_address_twice_is_refused(commands: UserCommands) -> None:
    commands.register(uuid4(), EMAIL, PASSWORD, "Ann")
    with pytest.raises(EmailTaken):
        commands.register(uuid4(), EMAIL, PASSWORD, "Ann")
    with pytest.raises(EmailTaken):
        commands.register(uuid4(), f"  {EMAIL.upper()} ", NEW_PASSWORD, "Other Ann")


def test_a_retried_registration_answers_with_the_same_id(
    commands: UserCommands, app: UsersApplication
) -> None:
    user_id = uuid4()
    first = commands.register(user_id, EMAIL, PASSWORD, "Ann")
    assert first.position is not None
    again = commands.register(user_id, EMAIL, PASSWORD, "Ann")
    assert again == Written(user_id, None)  # nothing new written
    assert app.recorder.max_notification_id() == first.position.id
    assert load_user(app, user_id).version == 2  # registered, verification link issued


def test_a_weak_password_registers_nothing(commands: UserCommands, app: UsersApplication) -> None:
    with pytest.raises(WeakPassword):
        commands.register(uuid4(), EMAIL, "password123456", "Ann")
    with pytest.raises(InvalidCredentials):
        commands.login(EMAIL, "password123456")
    assert app.recorder.max_notification_id() in (None, 0)


# --- verification and login -------------------------------------------------------


def test_login_with_a_wrong_password_or_unknown_address_is_refused_alike(
    commands: UserCommands, verified_user: UUID
) -> None:
    with pytest.raises(InvalidCredentials) as wrong:
        commands.login(EMAIL, NEW_PASSWORD)
    with pytest.raises(InvalidCredentials) as unknown:
        commands.login("nobody@example.com", PASSWORD)
    assert wrong.value.detail == unknown.value.detail


def test_login_before_verification_is_refused(commands: UserCommands) -> None:
    commands.register(uuid4(), EMAIL, PASSWORD, "Ann")
    with pytest.raises(EmailNotVerified):
        commands.login(EMAIL, PASSWORD)


def test_login_after_verification_starts_a_session(
    commands: UserCommands,
    app: UsersApplication,
    codec: TokenCodec,
    waiter: FakeWaiter,
    verified_user: UUID,
) -> None:
    logged_in = commands.login(EMAIL.lower(), PASSWORD)
    assert logged_in.user_id == verified_user
    session: Session = app.repository.get(logged_in.session_id)
    assert session.user_id == verified_user
    assert session.generation == 1
    assert codec.read_access(logged_in.tokens.access_token).session_id == logged_in.session_id
    assert codec.read_refresh(logged_in.tokens.refresh_token).generation == 1
    assert logged_in.position is not None
    assert waiter.calls[-1][0] == ACCESS_VIEW
    assert waiter.calls[-1][1] == [logged_in.position]


def test_a_verification_link_works_once(
    commands: UserCommands, app: UsersApplication, codec: TokenCodec
) -> None:
    user_id = commands.register(uuid4(), EMAIL, PASSWORD, "Ann").id
    token = link(app, codec, TokenPurpose.VERIFY_EMAIL, user_id)
    commands.verify_email(token)
    assert load_user(app, user_id).email_verified
    with pytest.raises(InvalidToken):
        commands.verify_email(token)


def test_an_expired_verification_link_is_refused(
    commands: UserCommands, app: UsersApplication, codec: TokenCodec, clock: FakeClock
) -> None:
    user_id = commands.register(uuid4(), EMAIL, PASSWORD, "Ann").id
    token = link(app, codec, TokenPurpose.VERIFY_EMAIL, user_id)
    clock.offset = timedelta(hours=25)
    with pytest.raises(InvalidToken):
        commands.verify_email(token)
    commands.resend_verification(EMAIL)
    commands.verify_email(link(app, codec, TokenPurpose.VERIFY_EMAIL, user_id))


def test_a_link_for_an_unknown_user_is_refused(commands: UserCommands, codec: TokenCodec) -> None:
    with pytest.raises(UnknownEntity):
        commands.verify_email(codec.link_token(TokenPurpose.VERIFY_EMAIL, uuid4(), uuid4()))
    with pytest.raises(InvalidToken):
        commands.verify_email("not a link")


def test_login_rehashes_a_hash_made_with_weaker_parameters(
    app: UsersApplication,
    codec: TokenCodec,
    clock: FakeClock,
    waiter: FakeWaiter,
    hasher: PasswordHasher,
    verified_user: UUID,
) -> None:
    stronger = PasswordHasher(time_cost=2, memory_kib=16, parallelism=1)
    commands = UserCommands(app, stronger, codec, clock, waiter, FakeKeys())
    before = load_user(app, verified_user)
    commands.login(EMAIL, PASSWORD)
    after = load_user(app, verified_user)
    assert after.password_hash != before.password_hash
    assert not stronger.needs_rehash(after.password_hash)
    assert after.credentials_version == before.credentials_version  # sessions stay valid
    commands.login(EMAIL, PASSWORD)
    assert load_user(app, verified_user).password_hash == after.password_hash


# --- refresh rotation -------------------------------------------------------------


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(
    commands: UserCommands, app: UsersApplication, codec: TokenCodec, verified_user: UUID
) -> None:
    logged_in = commands.login(EMAIL, PASSWORD)
    first = logged_in.tokens.refresh_token
    second = commands.refresh(first)
    assert second.session_id == logged_in.session_id
    assert codec.read_refresh(second.tokens.refresh_token).generation == 2
    third = commands.refresh(second.tokens.refresh_token)
    assert codec.read_refresh(third.tokens.refresh_token).generation == 3

    with pytest.raises(SessionEnded, match=Rotation.REUSE_DETECTED.value):
        commands.refresh(first)  # a copy of an old token: the family is revoked
    session: Session = app.repository.get(logged_in.session_id)
    assert session.revoked
    assert session.revoked_reason == Rotation.REUSE_DETECTED.value
    with pytest.raises(SessionEnded):
        commands.refresh(third.tokens.refresh_token)  # even the newest is dead now


def test_changing_the_password_ends_other_sessions(
    commands: UserCommands, verified_user: UUID
) -> None:
    logged_in = commands.login(EMAIL, PASSWORD)
    commands.change_password(verified_user, PASSWORD, NEW_PASSWORD)
    with pytest.raises(SessionEnded, match=Rotation.CREDENTIALS_CHANGED.value):
        commands.refresh(logged_in.tokens.refresh_token)
    with pytest.raises(InvalidCredentials):
        commands.login(EMAIL, PASSWORD)
    commands.login(EMAIL, NEW_PASSWORD)


def test_change_password_needs_the_current_one(
    commands: UserCommands, app: UsersApplication, verified_user: UUID
) -> None:
    with pytest.raises(InvalidCredentials):
        commands.change_password(verified_user, NEW_PASSWORD, NEW_PASSWORD)
    with pytest.raises(WeakPassword):
        commands.change_password(verified_user, PASSWORD, "qwertyuiop123")
    assert load_user(app, verified_user).credentials_version == 1


def test_a_signed_out_session_cannot_refresh(commands: UserCommands, verified_user: UUID) -> None:
    logged_in = commands.login(EMAIL, PASSWORD)
    commands.logout(logged_in.session_id)
    with pytest.raises(SessionEnded):
        commands.refresh(logged_in.tokens.refresh_token)


def test_refresh_refuses_an_access_token_and_a_session_of_another_user(
    commands: UserCommands, app: UsersApplication, codec: TokenCodec, clock: FakeClock
) -> None:
    commands.create_admin("ann@example.com", PASSWORD, "Ann")
    bob = commands.create_admin("bob@example.com", NEW_PASSWORD, "Bob")
    session = commands.login("ann@example.com", PASSWORD)
    with pytest.raises(AuthenticationRequired):
        commands.refresh(session.tokens.access_token)
    forged = codec.issue(bob.id, session.session_id, 1, clock()).refresh_token
    with pytest.raises(AuthenticationRequired):
        commands.refresh(forged)
    stored: Session = app.repository.get(session.session_id)
    assert not stored.revoked  # a forged claim does not even revoke


def test_a_deactivated_user_can_neither_log_in_nor_refresh(
    commands: UserCommands, verified_user: UUID
) -> None:
    logged_in = commands.login(EMAIL, PASSWORD)
    commands.deactivate(verified_user, "fraud", by=uuid4())
    with pytest.raises(AccountInactive):
        commands.login(EMAIL, PASSWORD)
    with pytest.raises(AccountInactive):
        commands.refresh(logged_in.tokens.refresh_token)


# --- password reset ---------------------------------------------------------------


def test_a_password_reset_link_sets_a_new_password_once(
    commands: UserCommands, app: UsersApplication, codec: TokenCodec, verified_user: UUID
) -> None:
    session = commands.login(EMAIL, PASSWORD)
    commands.request_password_reset(EMAIL)
    token = link(app, codec, TokenPurpose.RESET_PASSWORD, verified_user)
    commands.reset_password(token, NEW_PASSWORD)
    assert load_user(app, verified_user).credentials_version == 2
    commands.login(EMAIL, NEW_PASSWORD)
    with pytest.raises(InvalidCredentials):
        commands.login(EMAIL, PASSWORD)
    with pytest.raises(InvalidToken):
        commands.reset_password(token, "another-fine-passphrase-2031")
    with pytest.raises(SessionEnded):
        commands.refresh(session.tokens.refresh_token)


def test_a_reset_link_expires_and_cannot_verify_email(
    commands: UserCommands,
    app: UsersApplication,
    codec: TokenCodec,
    clock: FakeClock,
    verified_user: UUID,
) -> None:
    commands.request_password_reset(EMAIL)
    pending = load_user(app, verified_user).pending_tokens[TokenPurpose.RESET_PASSWORD.value]
    as_verification = codec.link_token(
        TokenPurpose.VERIFY_EMAIL, verified_user, pending["token_id"]
    )
    with pytest.raises(InvalidToken):
        commands.verify_email(as_verification)
    clock.offset = timedelta(hours=1, seconds=1)
    with pytest.raises(InvalidToken):
        commands.reset_password(
            link(app, codec, TokenPurpose.RESET_PASSWORD, verified_user), NEW_PASSWORD
        )


def test_a_reset_for_an_unknown_address_says_nothing(
    commands: UserCommands, app: UsersApplication
) -> None:
    before = app.recorder.max_notification_id()
    assert commands.request_password_reset("nobody@example.com") is None
    assert commands.resend_verification("nobody@example.com") is None
    assert app.recorder.max_notification_id() == before


# --- profile and roles ------------------------------------------------------------


def test_profile_roles_and_the_admin_who_cannot_demote_themself(
    commands: UserCommands, app: UsersApplication, verified_user: UUID
) -> None:
    admin = commands.create_admin("root@example.com", NEW_PASSWORD, "Root")
    assert load_user(app, admin.id).has_role(Role.ADMIN)
    commands.login("root@example.com", NEW_PASSWORD)  # verified at creation

    written = commands.update_profile(verified_user, {"name": "Ann S.", "phone": "+441234"})
    assert written.position is not None
    assert commands.update_profile(verified_user, {"name": "Ann S."}).position is None
    with pytest.raises(ValueError, match="not profile fields"):
        commands.update_profile(verified_user, {"roles": ["admin"]})

    commands.grant_role(verified_user, Role.SELLER, by=admin.id)
    assert load_user(app, verified_user).roles == ["customer", "seller"]
    with pytest.raises(NotPermitted):
        commands.revoke_role(admin.id, Role.ADMIN, by=admin.id)
    with pytest.raises(NotPermitted):
        commands.revoke_role(verified_user, Role.CUSTOMER, by=admin.id)
    commands.revoke_role(verified_user, Role.SELLER, by=admin.id)
    assert load_user(app, verified_user).roles == ["customer"]


def test_commands_on_an_unknown_user_are_refused(commands: UserCommands) -> None:
    with pytest.raises(UnknownEntity):
        commands.update_profile(uuid4(), {"name": "x"})
    with pytest.raises(UnknownEntity):
        commands.logout(uuid4())


def test_a_session_id_is_not_a_user_id(commands: UserCommands, verified_user: UUID) -> None:
    session = commands.login(EMAIL, PASSWORD)
    with pytest.raises(UnknownEntity):
        commands.update_profile(session.session_id, {"name": "x"})


# --- optimistic concurrency -------------------------------------------------------


def test_a_concurrent_write_is_retried_and_both_changes_survive(
    commands: UserCommands,
    app: UsersApplication,
    verified_user: UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_all = app.save_all
    attempts = 0

    def racing_save_all(*aggregates: Any) -> Position | None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:  # another request saves the same user first
            other = load_user(app, verified_user)
            other.update_profile({"phone": "+449999"})
            save_all(other)
        return save_all(*aggregates)

    monkeypatch.setattr(app, "save_all", racing_save_all)
    commands.update_profile(verified_user, {"name": "Ann S."})
    assert attempts == 2
    user = load_user(app, verified_user)
    assert (user.name, user.phone) == ("Ann S.", "+449999")


def test_retry_on_conflict_retries_integrity_errors_then_gives_up() -> None:
    calls: list[int] = []

    @retry_on_conflict
    def always_conflicts(n: int) -> int:
        calls.append(n)
        raise IntegrityError("version taken")

    with pytest.raises(ConcurrencyConflict) as caught:
        always_conflicts(7)
    assert calls == [7] * CONFLICT_ATTEMPTS
    assert isinstance(caught.value.__cause__, IntegrityError)
    assert caught.value.status == 409


@pytest.mark.parametrize("failures", range(CONFLICT_ATTEMPTS))
def test_retry_on_conflict_answers_once_a_retry_succeeds(failures: int) -> None:
    calls = 0

    @retry_on_conflict
    def flaky(*, answer: str) -> str:
        nonlocal calls
        calls += 1
        if calls <= failures:
            raise IntegrityError("version taken")
        return answer

    assert flaky(answer="ok") == "ok"
    assert calls == failures + 1


def test_retry_on_conflict_does_not_retry_other_errors() -> None:
    calls = 0

    @retry_on_conflict
    def refuses() -> None:
        nonlocal calls
        calls += 1
        raise InvalidToken("no")

    with pytest.raises(InvalidToken):
        refuses()
    assert calls == 1


def test_retry_on_conflict_keeps_the_handler_name() -> None:
    def handler() -> None: ...

    wrapped: Callable[[], None] = retry_on_conflict(handler)
    assert wrapped.__name__ == "handler"
    assert UserCommands.verify_email.__name__ == "verify_email"


def test_erasure_deletes_the_key_before_it_records_the_erasure_and_closes_the_account(
    commands: UserCommands, app: UsersApplication, keys: FakeKeys, verified_user: UUID
) -> None:
    admin = uuid4()
    written = commands.erase(verified_user, by=admin)
    user = load_user(app, verified_user)
    assert keys.erased == [verified_user]
    assert written.position is not None
    assert (user.erased, user.active, user.name, user.phone, user.addresses) == (
        True,
        False,
        "[erased]",
        None,
        [],
    )
    assert user.email == f"erased-{verified_user.hex}@erased.invalid"
    with pytest.raises(InvalidCredentials):
        commands.login(EMAIL, PASSWORD)
    assert commands.erase(verified_user, by=admin).position is None  # once is enough
    assert keys.erased == [verified_user]


def test_the_holders_own_erasure_needs_their_password_and_a_wrong_one_deletes_nothing(
    commands: UserCommands, app: UsersApplication, keys: FakeKeys, verified_user: UUID
) -> None:
    with pytest.raises(InvalidCredentials):
        commands.erase(verified_user, by=verified_user, password="not the password")
    assert keys.erased == []
    assert not load_user(app, verified_user).erased
    commands.erase(verified_user, by=verified_user, password=PASSWORD)
    assert keys.erased == [verified_user]

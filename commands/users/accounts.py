"""The users-and-access bounded context: its Application and command handlers.

Handlers load, decide (the aggregate enforces its rules), save, and answer with the
position written. Commands that end or change access wait until the access view
has seen them, so that an old token stops working before the command answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from commands.application import ContextApplication, Written, retry_on_conflict
from commands.errors import EmailTaken, InvalidCredentials
from commands.ports import Clock, PersonalDataKeys, ProjectionWaiter
from commands.tracing import traced_commands
from commands.users.passwords import PasswordHasher, check_password_strength
from commands.users.tokens import IssuedTokens, TokenCodec
from domain.errors import AuthenticationRequired, SessionEnded, UnknownEntity
from domain.positions import Position
from domain.sessions import Rotation, Session
from domain.users import EmailIndex, Role, TokenPurpose, User, email_index_id, normalise_email

ACCESS_VIEW = "user_access"


class UsersApplication(ContextApplication):
    name = "users"
    snapshotting_intervals = {User: 50, Session: 50}


@dataclass(frozen=True)
class LoggedIn:
    user_id: UUID
    session_id: UUID
    tokens: IssuedTokens
    position: Position | None


@dataclass(frozen=True)
class UserPolicy:
    verification_ttl: timedelta = timedelta(hours=24)
    reset_ttl: timedelta = timedelta(hours=1)
    access_wait_seconds: float = 2.0


@traced_commands
class UserCommands:
    def __init__(
        self,
        app: UsersApplication,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        clock: Clock,
        waiter: ProjectionWaiter,
        keys: PersonalDataKeys,
        policy: UserPolicy | None = None,
    ) -> None:
        self.app = app
        self._keys = keys
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._waiter = waiter
        self._policy = policy or UserPolicy()

    # --- registration and verification -----------------------------------

    def register(self, user_id: UUID, email: str, password: str, name: str) -> Written:
        """Create an account and send its verification link. ``user_id`` comes from
        the idempotency key when there is one, so a retried registration finds the
        account it already created."""
        email = normalise_email(email)
        check_password_strength(password, email=email, name=name)
        user = User.register(user_id, email, self._hasher.hash(password), name)
        user.request_email_verification(uuid4(), self._clock() + self._policy.verification_ttl)
        claim = EmailIndex(email=email, user_id=user_id)
        try:
            position = self.app.save_all(user, claim)
        except IntegrityError as error:
            existing = self._find_by_email(email)
            if existing is not None and existing.id == user_id:
                return Written(user_id, None)  # this very registration, retried
            raise EmailTaken("an account with this email address already exists") from error
        return Written(user_id, position)

    @retry_on_conflict
    def verify_email(self, token: str) -> Written:
        user_id, token_id = self._tokens.read_link_token(TokenPurpose.VERIFY_EMAIL, token)
        user: User = self._get(User, user_id)
        user.verify_email(token_id, self._clock())
        return Written(user.id, self.app.save_all(user))

    @retry_on_conflict
    def resend_verification(self, email: str) -> None:
        user = self._find_by_email(email)
        if user is None or user.email_verified or not user.active:
            return  # say nothing about which addresses have accounts
        user.request_email_verification(uuid4(), self._clock() + self._policy.verification_ttl)
        self.app.save_all(user)

    # --- sessions -----------------------------------------------------------

    def login(self, email: str, password: str) -> LoggedIn:
        user = self._find_by_email(email)
        if not self._hasher.verify(user.password_hash if user else None, password):
            raise InvalidCredentials("the email address or password is wrong")
        assert user is not None
        user.check_can_log_in()
        if self._hasher.needs_rehash(user.password_hash):
            user.rehash_password(self._hasher.hash(password))
        now = self._clock()
        session = Session(
            id=uuid4(),
            user_id=user.id,
            credentials_version=user.credentials_version,
            expires_at=now + self._tokens.refresh_ttl,
        )
        position = self.app.save_all(user, session)
        self._await_access(position)
        tokens = self._tokens.issue(user.id, session.id, session.generation, now)
        return LoggedIn(user.id, session.id, tokens, position)

    @retry_on_conflict
    def refresh(self, refresh_token: str) -> LoggedIn:
        claims = self._tokens.read_refresh(refresh_token)
        session = self._get(Session, claims.session_id)
        user = self._get(User, claims.user_id)
        if session.user_id != user.id:
            raise AuthenticationRequired("the token is invalid")
        now = self._clock()
        user.check_can_log_in()
        outcome = session.rotate(claims.generation, user.credentials_version, now)
        position = self.app.save_all(session)
        if outcome is not Rotation.ROTATED:
            self._await_access(position)
            raise SessionEnded(f"this session has been revoked: {outcome.value}")
        tokens = self._tokens.issue(user.id, session.id, session.generation, now)
        return LoggedIn(user.id, session.id, tokens, position)

    @retry_on_conflict
    def logout(self, session_id: UUID) -> Written:
        session = self._get(Session, session_id)
        session.revoke("signed out")
        position = self.app.save_all(session)
        self._await_access(position)
        return Written(session_id, position)

    # --- passwords ----------------------------------------------------------

    @retry_on_conflict
    def request_password_reset(self, email: str) -> None:
        user = self._find_by_email(email)
        if user is None or not user.active:
            return  # say nothing about which addresses have accounts
        user.request_password_reset(uuid4(), self._clock() + self._policy.reset_ttl)
        self.app.save_all(user)

    @retry_on_conflict
    def reset_password(self, token: str, new_password: str) -> Written:
        user_id, token_id = self._tokens.read_link_token(TokenPurpose.RESET_PASSWORD, token)
        user: User = self._get(User, user_id)
        check_password_strength(new_password, email=user.email, name=user.name)
        user.reset_password(token_id, self._hasher.hash(new_password), self._clock())
        return self._save_and_await_access(user)

    @retry_on_conflict
    def change_password(self, user_id: UUID, current: str, new: str) -> Written:
        user = self._get(User, user_id)
        if not self._hasher.verify(user.password_hash, current):
            raise InvalidCredentials("the current password is wrong")
        check_password_strength(new, email=user.email, name=user.name)
        user.change_password(self._hasher.hash(new))
        return self._save_and_await_access(user)

    # --- profile, roles, status -------------------------------------------

    @retry_on_conflict
    def update_profile(self, user_id: UUID, changes: dict[str, Any]) -> Written:
        user = self._get(User, user_id)
        user.update_profile(changes)
        return Written(user.id, self.app.save_all(user))

    @retry_on_conflict
    def deactivate(self, user_id: UUID, reason: str, by: UUID) -> Written:
        user = self._get(User, user_id)
        user.deactivate(reason, by)
        return self._save_and_await_access(user)

    @retry_on_conflict
    def erase(self, user_id: UUID, by: UUID, password: str | None = None) -> Written:
        """Erase the account's personal data (ADR 0024): with ``password``, the
        holder's own request, checked against it. The key goes first, then the
        event: a failure between them leaves the data shredded and the command to
        be retried, never an erasure recorded over readable data."""
        user = self._get(User, user_id)
        if password is not None and not self._hasher.verify(user.password_hash, password):
            raise InvalidCredentials("the password is wrong")
        user.erase(by)  # refuses before anything is deleted
        if not user.pending_events:
            return Written(user.id, None)
        self._keys.erase(user.id)
        return self._save_and_await_access(user)

    @retry_on_conflict
    def grant_role(self, user_id: UUID, role: Role, by: UUID) -> Written:
        user = self._get(User, user_id)
        user.grant_role(role, by)
        return self._save_and_await_access(user)

    @retry_on_conflict
    def revoke_role(self, user_id: UUID, role: Role, by: UUID) -> Written:
        user = self._get(User, user_id)
        user.revoke_role(role, by)
        return self._save_and_await_access(user)

    def create_admin(self, email: str, password: str, name: str) -> Written:
        """The first admin, made from the command line: registered, verified and
        granted the admin role in one save."""
        check_password_strength(password, email=email, name=name)
        user_id = uuid4()
        user = User.register(user_id, email, self._hasher.hash(password), name)
        token_id = uuid4()
        user.request_email_verification(token_id, self._clock() + self._policy.verification_ttl)
        user.verify_email(token_id, self._clock())
        user.grant_role(Role.ADMIN, by=user_id)
        try:
            position = self.app.save_all(user, EmailIndex(email=email, user_id=user_id))
        except IntegrityError as error:
            raise EmailTaken("an account with this email address already exists") from error
        return Written(user_id, position)

    # --- loading --------------------------------------------------------------

    def _get(self, cls: type[User] | type[Session], aggregate_id: UUID) -> Any:
        try:
            aggregate: Any = self.app.repository.get(aggregate_id)
        except AggregateNotFoundError as error:
            raise UnknownEntity(f"no such {cls.__name__.lower()}") from error
        if not isinstance(aggregate, cls):
            raise UnknownEntity(f"no such {cls.__name__.lower()}")
        return aggregate

    def _find_by_email(self, email: str) -> User | None:
        try:
            claim: EmailIndex = self.app.repository.get(email_index_id(email))
        except AggregateNotFoundError:
            return None
        user: User = self._get(User, claim.user_id)
        return None if user.erased else user  # an erased account answers as none

    def _save_and_await_access(self, user: User) -> Written:
        position = self.app.save_all(user)
        self._await_access(position)
        return Written(user.id, position)

    def _await_access(self, position: Position | None) -> None:
        if position is not None:
            self._waiter.wait(ACCESS_VIEW, [position], self._policy.access_wait_seconds)

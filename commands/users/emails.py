"""Policy: mail the verification and password-reset links that the User aggregate
issues. It runs after the events commit (never inside the command), follows the
users log like a projection, and names each message after the event that caused
it, so a redelivered event sends nothing twice."""

from __future__ import annotations

import contextlib
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.projection import Projection

from commands.ports import Email, Mailer
from commands.users.tokens import TokenCodec
from domain.users import TokenPurpose, User

_SUBJECTS = {
    TokenPurpose.VERIFY_EMAIL: "Verify your email address",
    TokenPurpose.RESET_PASSWORD: "Reset your password",
}
_PATHS = {
    TokenPurpose.VERIFY_EMAIL: "/verify-email",
    TokenPurpose.RESET_PASSWORD: "/reset-password",
}


class UserEmails(Projection[TrackingRecorder]):
    name = "user_emails"

    def __init__(
        self,
        view: TrackingRecorder,
        *,
        users: Application[Any],
        mailer: Mailer,
        tokens: TokenCodec,
        public_url: str,
    ) -> None:
        super().__init__(view)
        self._users = users
        self._mailer = mailer
        self._tokens = tokens
        self._public_url = public_url.rstrip("/")

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        # No "already processed?" check first: a redelivered event re-sends a mail
        # with the same message id, which the mailer drops; the common case saves
        # a round trip.
        if isinstance(domain_event, User.TokenIssued):
            self._mailer.send(self._link_email(domain_event, tracking))
        # Another delivery of this event may have got there first; the mail is deduped.
        with contextlib.suppress(IntegrityError):
            self.view.insert_tracking(tracking)

    def _link_email(self, event: Any, tracking: Tracking) -> Email:
        purpose = TokenPurpose(event.purpose)
        user: User = self._users.repository.get(
            event.originator_id, version=event.originator_version
        )
        token = self._tokens.link_token(purpose, user.id, event.token_id)
        link = f"{self._public_url}{_PATHS[purpose]}?token={token}"
        expires = event.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        body = (
            f"Hello {user.name},\n\n{_SUBJECTS[purpose]} with this link (valid until {expires}):\n"
            f"{link}\n\nOr send this token to the API: {token}\n\n"
            "If you did not ask for this, ignore this message.\n"
        )
        return Email(
            message_id=f"{tracking.application_name}:{tracking.notification_id}",
            to=user.email,
            subject=_SUBJECTS[purpose],
            body=body,
        )

"""Errors the domain raises when a command would break an invariant.

Each carries a stable ``code``; the HTTP edge maps codes to problem types, so the
domain stays free of transport concerns.
"""


class DomainError(Exception):
    """A command was refused because it would break a rule of the domain."""

    code = "domain-rule-violated"


class InvalidToken(DomainError):
    """A single-use token was unknown, already used, expired or for another purpose."""

    code = "invalid-token"


class AccountInactive(DomainError):
    """The account has been deactivated; it can no longer act."""

    code = "account-inactive"


class EmailNotVerified(DomainError):
    """The account exists but its email address has not been verified yet."""

    code = "email-not-verified"


class SessionEnded(DomainError):
    """The session was revoked, expired, or its credentials changed."""

    code = "session-ended"


class NotPermitted(DomainError):
    """The actor may not do this, whatever their role."""

    code = "not-permitted"


class AuthenticationRequired(DomainError):
    """No valid credentials came with a request that needs them."""

    code = "unauthenticated"


class UnknownEntity(DomainError):
    """The thing asked for does not exist, or the actor may not know it exists."""

    code = "not-found"

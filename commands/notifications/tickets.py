"""Stream tickets: how a browser's ``EventSource``, which cannot send an
Authorization header, opens the inbox stream without putting the access token in a
URL (URLs end up in logs and proxies). A ticket is random, lives 30 seconds and is
good for one connection; only its SHA-256 is stored, so a leaked table opens nothing."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from domain.refusals import Refused

TICKET_SECONDS = 30
TICKET_BYTES = 32
"""Random bytes of a ticket: 43 URL-safe characters."""
MAX_TICKET_LENGTH = 100
"""Longer than any ticket issued: refused before hashing."""


class StreamTicketRefused(Refused):
    """No ticket, or one that is unknown, expired or used already."""

    status = 401
    code = "invalid-stream-ticket"


class StreamTickets(Protocol):
    def store(self, ticket_hash: str, user_id: UUID, expires_at: datetime) -> None:
        """Keep the hash until ``expires_at``."""

    def consume(self, ticket_hash: str) -> UUID | None:
        """The user of a live ticket, which is gone once this returns (atomically:
        of two connections with one ticket only one gets the user); None when it is
        unknown, expired or used."""


@dataclass(frozen=True)
class IssuedTicket:
    ticket: str
    expires_in: int


def ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def issue(tickets: StreamTickets, user_id: UUID, now: datetime) -> IssuedTicket:
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    tickets.store(ticket_hash(ticket), user_id, now + timedelta(seconds=TICKET_SECONDS))
    return IssuedTicket(ticket, TICKET_SECONDS)


def redeem(tickets: StreamTickets, ticket: str | None) -> UUID:
    """The ticket's user, the ticket used up; refused (401) otherwise."""
    if not ticket or len(ticket) > MAX_TICKET_LENGTH:
        raise StreamTicketRefused(
            "open the stream with a ticket from POST /me/notifications/stream-tickets"
        )
    user_id = tickets.consume(ticket_hash(ticket))
    if user_id is None:
        raise StreamTicketRefused("the stream ticket is unknown, expired or used; get a new one")
    return user_id

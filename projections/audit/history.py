"""The audit view's port: any aggregate's history, event by event with its actor and
time, and the aggregate as it was at a version or a time. Read from the event store
itself (the source of truth, so nothing lags and nothing is left out), through each
log's own mapper (encrypted state is read decrypted); the adapter is in ``infra``.

What an admin can name (``AuditedKind``) and where each lives (``AUDITED``): the
aggregates a shop's people act on. Sessions, claims and indexes are not offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.actors import Actor
from domain.carts import Cart
from domain.catalog import Product
from domain.categories import Category
from domain.errors import UnknownEntity
from domain.inventory import StockItem
from domain.orders import Order
from domain.payments import Payment
from domain.refusals import BadQuery
from domain.reviews import Review
from domain.users import User


class AuditedKind(StrEnum):
    ORDER = "order"
    PAYMENT = "payment"
    PRODUCT = "product"
    USER = "user"
    STOCK_ITEM = "stock-item"
    CART = "cart"
    CATEGORY = "category"
    REVIEW = "review"


@dataclass(frozen=True)
class Audited:
    log: str
    """The Application (event store) that holds this kind's events."""
    aggregate: type[Aggregate]


AUDITED: dict[AuditedKind, Audited] = {
    AuditedKind.ORDER: Audited("ordering", Order),
    AuditedKind.CART: Audited("ordering", Cart),
    AuditedKind.PAYMENT: Audited("payments", Payment),
    AuditedKind.PRODUCT: Audited("catalog", Product),
    AuditedKind.CATEGORY: Audited("catalog", Category),
    AuditedKind.STOCK_ITEM: Audited("inventory", StockItem),
    AuditedKind.REVIEW: Audited("reviews", Review),
    AuditedKind.USER: Audited("users", User),
}


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    position: int
    """The event's position in its log (its notification id)."""
    type: str
    """The event's class, as ``Order.Placed``."""
    at: datetime
    actor: Actor
    data: dict[str, Any]
    """The event's own attributes as JSON values, secrets redacted (``plain``)."""


@dataclass(frozen=True)
class HistoryPage:
    log: str
    entries: list[HistoryEntry]
    next_after: int | None
    """The version to pass as ``after`` for the next page; None: this is the last."""


@dataclass(frozen=True)
class StateAt:
    log: str
    version: int
    at: datetime
    """When the event of that version was recorded."""
    last_version: int
    state: dict[str, Any]
    """The aggregate's attributes then, as JSON values, secrets redacted."""


class NoSuchAggregate(UnknownEntity):
    """No aggregate of that kind has that id (or it did not exist yet at that time)."""


class VersionOrTime(BadQuery):
    """Both ``version`` and ``as_of``: which one is meant?"""

    status = 422
    code = "version-or-time"


class AggregateHistory(Protocol):
    """Blocking (the event store's library is): call from a ``def`` route."""

    def history(
        self, kind: AuditedKind, aggregate_id: UUID, *, after: int, limit: int
    ) -> HistoryPage:
        """Events after version ``after``, oldest first; ``NoSuchAggregate`` if none."""
        ...

    def state_at(
        self,
        kind: AuditedKind,
        aggregate_id: UUID,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> StateAt:
        """The aggregate at ``version``, or as it stood at ``as_of`` (its last event
        at or before then), or now; ``NoSuchAggregate`` for an unknown id, a version
        it never reached or a time before it existed."""
        ...

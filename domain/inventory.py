"""Inventory, event-sourced per SKU: stock on hand, reservations, low-stock alerts.

One ``StockItem`` per SKU, its id derived from the SKU (``stock_item_id``), so every
writer of a SKU's stock meets every other on that one aggregate's version: two
reservations decided on the same state cannot both be saved, the loser decides again
on the newer state. Hence the invariant holds whatever the interleaving:

    available = on_hand - sum(reservations) >= 0

Rules:

- Quantities are whole units, 1 to 1,000,000 per operation; on hand never exceeds
  1,000,000,000. An adjustment is a non-zero delta in the same bounds with a reason
  (counting, damage, theft...), and may not take more than is available: reserved
  units are promised to orders.
- A reservation (keyed by a caller's id, e.g. the order id) holds units until it is
  released (units back to available) or committed on shipment (units leave on hand).
  Reserving the same id again with the same quantity changes nothing (a redelivered
  saga step); with another quantity it is refused.
- Releasing or committing is idempotent: repeating the same outcome for a recently
  closed reservation changes nothing. The opposite outcome (committing a released
  reservation, releasing a committed one), reserving a recently closed id again, and
  releasing or committing an id never seen are refused. "Recently" is the last
  ``CLOSED_MEMORY`` closed reservations of the SKU: bounded state for SKUs that
  sell forever; the saga dedupes redeliveries by position before this anyway.
- Low stock: once a threshold is set, ``LowStockReached`` is recorded when available
  stock drops to or below it, once per crossing: it re-arms only when available
  stock rises above the threshold again (or the threshold changes so that it is).
  Committing a reservation does not change what is available, so it never alerts.
- Who: receiving, adjusting and setting the threshold are for the SKU's seller or an
  admin (``require_can_manage_stock``; the product, in the catalog, names the
  seller). Reserving, releasing and committing are the checkout saga's, never a
  client's: the command layer exposes them only to policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.access import Principal
from domain.errors import DomainError, NotPermitted, UnknownEntity
from domain.money import normalise_sku
from domain.users import Role

MAX_QUANTITY = 1_000_000
MAX_ON_HAND = 1_000_000_000
MAX_REASON = 500
MAX_RESERVATION_ID = 128
CLOSED_MEMORY = 1_000

RELEASED = "released"
COMMITTED = "committed"


class InvalidQuantity(DomainError, ValueError):
    """A quantity, delta, threshold or reason is malformed or out of bounds."""

    code = "invalid-quantity"


class InsufficientStock(DomainError):
    """Fewer units are available than asked for."""

    code = "insufficient-stock"

    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(
            f"insufficient stock of {sku}: {requested} requested, {available} available"
        )
        self.sku = sku
        self.requested = requested
        self.available = available


class ReservationConflict(DomainError):
    """The reservation exists with another quantity, or was already closed the
    other way (released vs committed), or is closed and asked for again."""

    code = "reservation-conflict"


class UnknownReservation(UnknownEntity):
    """No open or recently closed reservation has this id."""

    code = "unknown-reservation"


def stock_item_id(sku: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"/eventshop/inventory/skus/{normalise_sku(sku)}")


def require_can_manage_stock(principal: Principal, seller_id: UUID | None) -> None:
    """Admins manage any SKU's stock; a seller only that of their own products
    (``seller_id`` None: the SKU names no product, so only an admin may)."""
    if principal.has_role(Role.ADMIN):
        return
    if seller_id is None or not principal.has_role(Role.SELLER):
        raise NotPermitted("only the product's seller or an admin may manage its stock")
    if principal.user_id != seller_id:
        raise NotPermitted("sellers manage the stock of their own products only")


def valid_quantity(quantity: object, what: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidQuantity(f"the {what} must be a whole number")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity(f"the {what} must be between 1 and {MAX_QUANTITY:,}")
    return quantity


def valid_reservation_id(reservation_id: object) -> str:
    if (
        not isinstance(reservation_id, str)
        or not 1 <= len(reservation_id) <= MAX_RESERVATION_ID
        or not reservation_id.isprintable()
        or reservation_id.strip() != reservation_id
    ):
        raise InvalidQuantity(
            f"a reservation id is 1-{MAX_RESERVATION_ID} printable characters, "
            "without surrounding spaces"
        )
    return reservation_id


class StockItem(Aggregate):
    """The stock of one SKU. Open it with ``StockItem(sku=...)``; its id follows."""

    @staticmethod
    def create_id(sku: str) -> UUID:
        return stock_item_id(sku)

    class Created(Aggregate.Created):
        sku: str

    class StockReceived(Aggregate.Event):
        quantity: int
        by: UUID

    class StockAdjusted(Aggregate.Event):
        delta: int
        reason: str
        by: UUID

    class StockReserved(Aggregate.Event):
        reservation_id: str
        quantity: int

    class ReservationReleased(Aggregate.Event):
        reservation_id: str

    class ReservationCommitted(Aggregate.Event):
        reservation_id: str

    class LowStockThresholdSet(Aggregate.Event):
        threshold: int | None
        by: UUID

    class LowStockReached(Aggregate.Event):
        available: int
        threshold: int

    @event(Created)
    def __init__(self, sku: str) -> None:
        self.sku = normalise_sku(sku)
        self.on_hand = 0
        self.reservations: dict[str, int] = {}
        # reservation id -> "released" | "committed", oldest first, at most CLOSED_MEMORY
        self.closed: dict[str, str] = {}
        self.low_stock_threshold: int | None = None
        self.low_stock_alerted = False

    # --- what is available --------------------------------------------------------

    @property
    def reserved(self) -> int:
        return sum(self.reservations.values())

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def is_low(self) -> bool:
        return self.low_stock_threshold is not None and self.available <= self.low_stock_threshold

    def _rearm(self) -> None:
        """Called by every event that may raise availability: the next drop to the
        threshold alerts again."""
        if not self.is_low:
            self.low_stock_alerted = False

    def _alert_if_low(self) -> None:
        if self.is_low and not self.low_stock_alerted:
            assert self.low_stock_threshold is not None
            self._low_stock_reached(available=self.available, threshold=self.low_stock_threshold)

    @event(LowStockReached)
    def _low_stock_reached(self, available: int, threshold: int) -> None:
        self.low_stock_alerted = True

    # --- receiving and adjusting --------------------------------------------------

    def receive(self, quantity: int, by: UUID) -> None:
        quantity = valid_quantity(quantity)
        if self.on_hand + quantity > MAX_ON_HAND:
            raise InvalidQuantity(f"stock on hand cannot exceed {MAX_ON_HAND:,} units")
        self._stock_received(quantity=quantity, by=by)

    @event(StockReceived)
    def _stock_received(self, quantity: int, by: UUID) -> None:
        self.on_hand += quantity
        self._rearm()

    def adjust(self, delta: int, reason: str, by: UUID) -> None:
        """Correct stock on hand by ``delta`` (negative: units lost), never below what
        is reserved."""
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
            raise InvalidQuantity("an adjustment is a non-zero whole number")
        valid_quantity(abs(delta), "adjustment")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            raise InvalidQuantity(f"an adjustment needs a reason of 1-{MAX_REASON} characters")
        if delta < 0 and -delta > self.available:
            raise InsufficientStock(self.sku, -delta, self.available)
        if self.on_hand + delta > MAX_ON_HAND:
            raise InvalidQuantity(f"stock on hand cannot exceed {MAX_ON_HAND:,} units")
        self._stock_adjusted(delta=delta, reason=reason.strip(), by=by)
        self._alert_if_low()

    @event(StockAdjusted)
    def _stock_adjusted(self, delta: int, reason: str, by: UUID) -> None:
        self.on_hand += delta
        self._rearm()

    def set_low_stock_threshold(self, threshold: int | None, by: UUID) -> None:
        """Alert when available stock drops to ``threshold`` or below (0: when sold
        out; None: never). Setting it at or above the current level alerts at once."""
        if threshold is not None and (
            isinstance(threshold, bool)
            or not isinstance(threshold, int)
            or not 0 <= threshold <= MAX_QUANTITY
        ):
            raise InvalidQuantity(f"a threshold is a whole number from 0 to {MAX_QUANTITY:,}")
        if threshold != self.low_stock_threshold:
            self._low_stock_threshold_set(threshold=threshold, by=by)
            self._alert_if_low()

    @event(LowStockThresholdSet)
    def _low_stock_threshold_set(self, threshold: int | None, by: UUID) -> None:
        self.low_stock_threshold = threshold
        self._rearm()

    # --- reservations -------------------------------------------------------------

    def reserve(self, reservation_id: str, quantity: int) -> None:
        if self.check_reserve(reservation_id, quantity):
            self._stock_reserved(reservation_id=reservation_id, quantity=quantity)
            self._alert_if_low()

    def check_reserve(self, reservation_id: str, quantity: int) -> bool:
        """Raise what ``reserve`` would refuse; answer whether it would record an
        event (False: this very reservation is already held)."""
        valid_reservation_id(reservation_id)
        valid_quantity(quantity)
        held = self.reservations.get(reservation_id)
        if held is not None:
            if held != quantity:
                raise ReservationConflict(
                    f"reservation {reservation_id!r} holds {held} units, not {quantity}"
                )
            return False
        if reservation_id in self.closed:
            raise ReservationConflict(
                f"reservation {reservation_id!r} was already {self.closed[reservation_id]}"
            )
        if quantity > self.available:
            raise InsufficientStock(self.sku, quantity, self.available)
        return True

    @event(StockReserved)
    def _stock_reserved(self, reservation_id: str, quantity: int) -> None:
        self.reservations = {**self.reservations, reservation_id: quantity}

    def release(self, reservation_id: str) -> None:
        """The units go back to available (order cancelled, payment failed...)."""
        if self._close(reservation_id, RELEASED):
            self._reservation_released(reservation_id=reservation_id)

    @event(ReservationReleased)
    def _reservation_released(self, reservation_id: str) -> None:
        self._closed(reservation_id, RELEASED)
        self._rearm()

    def commit(self, reservation_id: str) -> None:
        """The units leave the warehouse (shipped): on hand drops by the quantity."""
        if self._close(reservation_id, COMMITTED):
            self._reservation_committed(reservation_id=reservation_id)

    @event(ReservationCommitted)
    def _reservation_committed(self, reservation_id: str) -> None:
        self.on_hand -= self.reservations[reservation_id]
        self._closed(reservation_id, COMMITTED)

    def _close(self, reservation_id: str, outcome: str) -> bool:
        """Whether closing ``reservation_id`` this way needs an event (False: it was
        already closed this way)."""
        reservation_id = valid_reservation_id(reservation_id)
        if reservation_id in self.reservations:
            return True
        previous = self.closed.get(reservation_id)
        if previous == outcome:
            return False
        if previous is not None:
            raise ReservationConflict(f"reservation {reservation_id!r} was already {previous}")
        raise UnknownReservation(f"no reservation {reservation_id!r} of {self.sku}")

    def _closed(self, reservation_id: str, outcome: str) -> None:
        self.reservations = {k: v for k, v in self.reservations.items() if k != reservation_id}
        closed = {**self.closed, reservation_id: outcome}
        while len(closed) > CLOSED_MEMORY:
            del closed[next(iter(closed))]
        self.closed = closed


def open_stock_item(sku: str) -> StockItem:
    """A new, empty stock item for ``sku`` (validated)."""
    return StockItem(sku=normalise_sku(sku))


def reserve_lines(
    items: Mapping[str, StockItem], reservation_id: str, lines: Mapping[str, int]
) -> None:
    """Reserve every line of an order (SKU -> quantity) under one reservation id, or
    none: every line is checked before any event is recorded. ``items`` maps each
    SKU of ``lines`` to its stock item; save them together."""
    needed = [
        sku for sku, quantity in lines.items() if items[sku].check_reserve(reservation_id, quantity)
    ]
    for sku in needed:
        items[sku].reserve(reservation_id, lines[sku])

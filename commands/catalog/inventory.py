"""The inventory bounded context: its Application and command handlers.

Every command on a SKU loads its one ``StockItem``, decides and saves; two writers
that decided on the same version cannot both save (optimistic concurrency), the loser
decides again on the newer state. That is what keeps stock from being oversold by
concurrent checkouts, so inventory retries harder than the other contexts: the last
units of a popular SKU are exactly where many reservations meet. Each lost race means
another writer's save succeeded, so a handler needs at most as many attempts as
there are writers ahead of it; ``INVENTORY_CONFLICT_ATTEMPTS`` covers dozens, with a
short random back-off so the losers do not collide again in lockstep. After that the
command answers 409 ``concurrency-conflict`` and the client (or saga) may retry.

Receiving, adjusting and the low-stock threshold are for the SKU's seller or an
admin (the catalog names the seller, through the ``SkuOwners`` port). Reserving,
releasing and committing take no principal: they are the checkout saga's steps and
must not be exposed to clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.application import ContextApplication, Written, retrying_conflicts
from commands.tracing import traced_commands
from domain.access import Principal
from domain.errors import DomainError
from domain.inventory import (
    InsufficientStock,
    InvalidQuantity,
    StockItem,
    UnknownReservation,
    open_stock_item,
    require_can_manage_stock,
    reserve_lines,
    stock_item_id,
    valid_quantity,
    valid_reservation_id,
)
from domain.money import normalise_sku
from domain.positions import Position

INVENTORY_CONFLICT_ATTEMPTS = 32
MAX_LINES = 100


retry_contended = retrying_conflicts(INVENTORY_CONFLICT_ATTEMPTS, backoff_seconds=0.002)


class SkuOwners(Protocol):
    def seller_of_sku(self, sku: str) -> UUID | None:
        """The seller of the product with this SKU; None when no product has it."""
        ...


class InventoryApplication(ContextApplication):
    name = "inventory"
    snapshotting_intervals = {StockItem: 100}


@traced_commands
class InventoryCommands:
    def __init__(self, app: InventoryApplication, owners: SkuOwners) -> None:
        self.app = app
        self._owners = owners

    # --- sellers and admins -----------------------------------------------------------

    def receive(self, principal: Principal, sku: str, quantity: int) -> Written:
        sku = self._authorised(principal, sku)
        return self._receive(sku, quantity, principal.user_id)

    @retry_contended
    def _receive(self, sku: str, quantity: int, by: UUID) -> Written:
        item = self.find(sku) or open_stock_item(sku)
        item.receive(quantity, by)
        return Written(item.id, self.app.save_all(item))

    def adjust(self, principal: Principal, sku: str, delta: int, reason: str) -> Written:
        sku = self._authorised(principal, sku)
        return self._adjust(sku, delta, reason, principal.user_id)

    @retry_contended
    def _adjust(self, sku: str, delta: int, reason: str, by: UUID) -> Written:
        item = self.find(sku) or open_stock_item(sku)
        item.adjust(delta, reason, by)
        return Written(item.id, self.app.save_all(item))

    def set_low_stock_threshold(
        self, principal: Principal, sku: str, threshold: int | None
    ) -> Written:
        sku = self._authorised(principal, sku)
        return self._set_threshold(sku, threshold, principal.user_id)

    @retry_contended
    def _set_threshold(self, sku: str, threshold: int | None, by: UUID) -> Written:
        item = self.find(sku) or open_stock_item(sku)
        item.set_low_stock_threshold(threshold, by)
        return Written(item.id, self.app.save_all(item))

    # --- the checkout saga --------------------------------------------------------------

    @retry_contended
    def reserve(self, sku: str, reservation_id: str, quantity: int) -> Written:
        """Hold ``quantity`` units for ``reservation_id`` (e.g. the order id).
        Repeating the same reservation changes nothing."""
        sku = normalise_sku(sku)
        item = self.find(sku)
        if item is None:
            valid_reservation_id(reservation_id)
            raise InsufficientStock(sku, valid_quantity(quantity), 0)
        item.reserve(reservation_id, quantity)
        return Written(item.id, self.app.save_all(item))

    def reserve_lines(self, reservation_id: str, lines: Mapping[str, int]) -> Position | None:
        """Reserve every line (SKU -> quantity) of an order, or none of them: one
        atomic save of every SKU's stock item."""
        position, refused = self.reserve_orders({reservation_id: lines})
        if reservation_id in refused:
            raise refused[reservation_id]
        return position

    @retry_contended
    def reserve_orders(
        self, reservations: Mapping[str, Mapping[str, int]]
    ) -> tuple[Position | None, dict[str, DomainError]]:
        """Reserve several orders' lines (reservation id -> SKU -> quantity), each
        order all or nothing, in the order given: each SKU's stock item is loaded
        once and every reservation saved in one transaction. Answers the position
        written and the reservations refused (for want of stock, or malformed or
        conflicting with the id's past: one order's refusal never fails the others)."""
        wanted: dict[str, dict[str, int]] = {}
        refused: dict[str, DomainError] = {}
        for rid, lines in reservations.items():
            try:
                wanted[rid] = _valid_lines(rid, lines)
            except DomainError as error:
                refused[rid] = error
        items: dict[str, StockItem] = {}
        unknown: set[str] = set()  # no stock item: never received
        for sku in {sku for lines in wanted.values() for sku in lines}:
            item = self.find(sku)
            if item is None:
                unknown.add(sku)
            else:
                items[sku] = item
        for rid, lines in wanted.items():
            missing = [sku for sku in lines if sku in unknown]
            try:
                if missing:
                    raise InsufficientStock(missing[0], lines[missing[0]], 0)
                reserve_lines(items, rid, lines)
            except DomainError as error:
                refused[rid] = error
        return self.app.save_all(*items.values()), refused

    @retry_contended
    def release(self, sku: str, reservation_id: str) -> Written:
        item = self._item_with_reservations(sku, reservation_id)
        item.release(reservation_id)
        return Written(item.id, self.app.save_all(item))

    @retry_contended
    def commit(self, sku: str, reservation_id: str) -> Written:
        item = self._item_with_reservations(sku, reservation_id)
        item.commit(reservation_id)
        return Written(item.id, self.app.save_all(item))

    @retry_contended
    def restock(self, sku: str, reservation_id: str, quantity: int, by: UUID) -> Written | None:
        """Returned goods back on hand: the units that ``reservation_id`` committed
        come back, once. The proof of "once" is the stock item's own history, read
        newest first back to the commit: the adjustment this names is there or not,
        and a concurrent restock of the same return conflicts on the item's version
        and reads it on the retry. None when it was already done."""
        sku = normalise_sku(sku)
        item = self._item_with_reservations(sku, reservation_id)
        reason = f"returned goods of reservation {valid_reservation_id(reservation_id)}"
        for past in self.app.events.get(item.id, desc=True):
            if isinstance(past, StockItem.StockAdjusted) and past.reason == reason:
                return None
            if (
                isinstance(past, StockItem.ReservationCommitted)
                and past.reservation_id == reservation_id
            ):
                break
        else:
            raise UnknownReservation(f"reservation {reservation_id!r} of {sku} was not shipped")
        item.adjust(quantity, reason, by)
        return Written(item.id, self.app.save_all(item))

    # --- loading ------------------------------------------------------------------------

    def find(self, sku: str) -> StockItem | None:
        try:
            item: object = self.app.repository.get(stock_item_id(sku))
        except AggregateNotFoundError:
            return None
        return item if isinstance(item, StockItem) else None

    def _item_with_reservations(self, sku: str, reservation_id: str) -> StockItem:
        sku = normalise_sku(sku)
        item = self.find(sku)
        if item is None:
            valid_reservation_id(reservation_id)
            raise UnknownReservation(f"no reservation {reservation_id!r} of {sku}")
        return item

    def _authorised(self, principal: Principal, sku: str) -> str:
        sku = normalise_sku(sku)
        require_can_manage_stock(principal, self._owners.seller_of_sku(sku))
        return sku


def _valid_lines(reservation_id: str, lines: Mapping[str, int]) -> dict[str, int]:
    """The lines with their SKUs normalised: 1 to ``MAX_LINES`` of them, no SKU twice."""
    valid_reservation_id(reservation_id)
    normalised: dict[str, int] = {}
    for sku, quantity in lines.items():
        code = normalise_sku(sku)
        if code in normalised:
            raise InvalidQuantity(f"SKU {code} appears on two lines")
        normalised[code] = valid_quantity(quantity)
    if not 1 <= len(normalised) <= MAX_LINES:
        raise InvalidQuantity(f"a reservation has 1 to {MAX_LINES} lines")
    return normalised

"""The Cart aggregate: what a shopper means to buy, one line per SKU.

- An account's cart has an id derived from the account (``cart_id_for``): a shopper
  has one cart, found without a lookup. A guest cart has an id the command layer
  draws at random (it is the guest's only claim to it) and no owner.
- A line holds the product, the SKU, a quantity and the unit price the shopper saw.
  Adding a SKU already in the cart adds to its quantity (and takes the newer price).
  Bounds: at most ``MAX_LINES`` lines and ``MAX_LINE_QUANTITY`` per line; one
  currency per cart (the first line's).
- Prices are re-read at checkout: ``recheck_prices`` takes the catalog's current
  prices, records the lines whose price changed (or that can no longer be bought)
  and updates them; the command layer then refuses to check out with
  ``PricesChanged`` so that the shopper sees the new prices before paying. A second
  attempt finds nothing changed and goes through.
- On login a guest cart merges into the account cart: quantities of a SKU in both
  are added (capped at the per-line bound); guest lines that do not fit (too many
  lines, another currency) are dropped and named in the event. The guest cart is
  then closed (``merged_into``) and refuses further changes; merging it again into
  the same cart records nothing. Save both carts together.
- ``check_out`` empties the cart for the order it became.
- Removing a line that is not there and clearing an empty cart record nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, UnknownEntity
from domain.lines import (
    MAX_LINE_QUANTITY,
    MAX_LINES,
    InvalidLine,
    line,
    lines_total,
    valid_line_quantity,
)
from domain.money import Money, normalise_sku


class EmptyCart(DomainError):
    """The cart has no lines to check out."""

    code = "cart-empty"


class CartClosed(DomainError):
    """The guest cart was merged into an account's cart and no longer changes."""

    code = "cart-closed"


class LineNotInCart(UnknownEntity):
    """The cart has no line for this SKU."""

    code = "cart-line-not-found"


class PricesChanged(DomainError):
    """Prices changed since the shopper saw them: they must see the new ones first.
    ``changes`` are the ``PricesRechecked`` event's entries."""

    code = "prices-changed"

    def __init__(self, changes: list[dict[str, Any]]) -> None:
        super().__init__(
            f"{len(changes)} line(s) changed price or can no longer be bought: "
            "review the cart before paying"
        )
        self.changes = changes


def cart_id_for(owner_id: UUID) -> UUID:
    return uuid5(NAMESPACE_URL, f"/eventshop/carts/owners/{owner_id}")


class Cart(Aggregate):
    """A shopper's (or a guest's) cart. Open with ``open_cart`` / ``open_guest_cart``."""

    class Opened(Aggregate.Created):
        owner_id: UUID | None

    class LineAdded(Aggregate.Event):
        product_id: UUID
        sku: str
        quantity: int
        unit_price: dict[str, str]

    class QuantityChanged(Aggregate.Event):
        sku: str
        quantity: int

    class LineRemoved(Aggregate.Event):
        sku: str

    class Cleared(Aggregate.Event):
        pass

    class GuestCartMerged(Aggregate.Event):
        guest_cart_id: UUID
        lines: list[dict[str, Any]]  # the merged lines as they now are in this cart
        dropped: list[str]  # SKUs of guest lines that did not fit

    class MergedInto(Aggregate.Event):
        cart_id: UUID

    class PricesRechecked(Aggregate.Event):
        # {"sku", "previous": price, "current": price | None (no longer for sale)}
        changes: list[dict[str, Any]]

    class CheckedOut(Aggregate.Event):
        order_id: UUID
        lines: list[dict[str, Any]]

    @event(Opened)
    def __init__(self, id: UUID, owner_id: UUID | None) -> None:
        self.owner_id = owner_id
        self.lines: dict[str, dict[str, Any]] = {}  # SKU -> line payload, in order added
        self.merged_into: UUID | None = None
        self.last_order_id: UUID | None = None

    @property
    def currency(self) -> str | None:
        return next((str(v["unit_price"]["currency"]) for v in self.lines.values()), None)

    @property
    def total(self) -> Money | None:
        """None for an empty cart (it has no currency yet)."""
        currency = self.currency
        if currency is None:
            return None
        return lines_total(self.lines.values(), currency)

    # --- lines ------------------------------------------------------------------------

    def add_line(self, product_id: UUID, sku: str, quantity: int, unit_price: Money) -> None:
        self._require_open()
        added = line(product_id, sku, quantity, unit_price)
        existing = self.lines.get(added["sku"])
        if existing is None:
            if len(self.lines) >= MAX_LINES:
                raise InvalidLine(f"a cart holds at most {MAX_LINES} lines")
            if self.currency not in (None, unit_price.currency):
                raise InvalidLine(f"this cart is in {self.currency}, not {unit_price.currency}")
        else:
            if existing["product_id"] != product_id:
                raise InvalidLine(f"SKU {added['sku']} is another product's in this cart")
            if existing["quantity"] + quantity > MAX_LINE_QUANTITY:
                raise InvalidLine(f"at most {MAX_LINE_QUANTITY} of one SKU per cart")
        self._line_added(**added)

    @event(LineAdded)
    def _line_added(
        self, product_id: UUID, sku: str, quantity: int, unit_price: dict[str, str]
    ) -> None:
        held = self.lines[sku]["quantity"] if sku in self.lines else 0
        self.lines = {
            **self.lines,
            sku: {
                "product_id": product_id,
                "sku": sku,
                "quantity": held + quantity,
                "unit_price": unit_price,
            },
        }

    def change_quantity(self, sku: str, quantity: int) -> None:
        self._require_open()
        sku = self._held(sku)
        if valid_line_quantity(quantity) != self.lines[sku]["quantity"]:
            self._quantity_changed(sku=sku, quantity=quantity)

    @event(QuantityChanged)
    def _quantity_changed(self, sku: str, quantity: int) -> None:
        self.lines = {**self.lines, sku: {**self.lines[sku], "quantity": quantity}}

    def remove_line(self, sku: str) -> None:
        self._require_open()
        sku = normalise_sku(sku)
        if sku in self.lines:
            self._line_removed(sku=sku)

    @event(LineRemoved)
    def _line_removed(self, sku: str) -> None:
        self.lines = {k: v for k, v in self.lines.items() if k != sku}

    def clear(self) -> None:
        self._require_open()
        if self.lines:
            self._cleared()

    @event(Cleared)
    def _cleared(self) -> None:
        self.lines = {}

    # --- merging a guest cart ---------------------------------------------------------

    def merge(self, guest: Cart) -> None:
        """Take ``guest``'s lines into this (account) cart and close ``guest``."""
        if self.owner_id is None:
            raise InvalidLine("guest carts merge into an account's cart, not another guest's")
        if guest.owner_id is not None:
            raise InvalidLine("only a guest cart can be merged into an account's cart")
        if guest.merged_into == self.id:
            return
        guest._require_open()
        self._require_open()
        merged: list[dict[str, Any]] = []
        dropped: list[str] = []
        room = MAX_LINES - len(self.lines)
        currency = self.currency
        for sku, entry in guest.lines.items():
            existing = self.lines.get(sku)
            if existing is not None and existing["product_id"] == entry["product_id"]:
                quantity = min(existing["quantity"] + entry["quantity"], MAX_LINE_QUANTITY)
                merged.append({**existing, "quantity": quantity})
            elif existing is None and room > 0 and currency in (None, _currency(entry)):
                merged.append(dict(entry))
                room -= 1
                currency = _currency(entry)
            else:
                dropped.append(sku)
        self._guest_cart_merged(guest_cart_id=guest.id, lines=merged, dropped=dropped)
        guest._merged_into(cart_id=self.id)

    @event(GuestCartMerged)
    def _guest_cart_merged(
        self, guest_cart_id: UUID, lines: list[dict[str, Any]], dropped: list[str]
    ) -> None:
        self.lines = {**self.lines, **{str(entry["sku"]): entry for entry in lines}}

    @event(MergedInto)
    def _merged_into(self, cart_id: UUID) -> None:
        self.merged_into = cart_id
        self.lines = {}

    # --- checkout ---------------------------------------------------------------------

    def recheck_prices(self, current: Mapping[str, Money | None]) -> list[dict[str, Any]]:
        """Compare each line with ``current`` (SKU -> the catalog's price now; None or
        absent: no longer for sale, as is a price in another currency). Records and
        returns the changes; an empty list means the cart is priced as seen."""
        self._require_open()
        changes = []
        for sku, entry in self.lines.items():
            seen = Money.from_dict(entry["unit_price"])
            now = current.get(sku)
            if now is not None and now.currency != seen.currency:
                now = None
            if now != seen:
                changes.append(
                    {
                        "sku": sku,
                        "previous": seen.to_dict(),
                        "current": None if now is None else now.to_dict(),
                    }
                )
        if changes:
            self._prices_rechecked(changes=changes)
        return changes

    @event(PricesRechecked)
    def _prices_rechecked(self, changes: list[dict[str, Any]]) -> None:
        lines = dict(self.lines)
        for change in changes:
            if change["current"] is None:
                del lines[change["sku"]]
            else:
                lines[change["sku"]] = {**lines[change["sku"]], "unit_price": change["current"]}
        self.lines = lines

    def check_out(self, order_id: UUID) -> list[dict[str, Any]]:
        """Empty the cart into order ``order_id``; answers the lines to order. Checking
        out again for the same order records nothing (and answers no lines)."""
        if self.last_order_id == order_id and not self.lines:
            return []
        self._require_open()
        if not self.lines:
            raise EmptyCart("the cart is empty")
        lines = list(self.lines.values())
        self._checked_out(order_id=order_id, lines=lines)
        return lines

    @event(CheckedOut)
    def _checked_out(self, order_id: UUID, lines: list[dict[str, Any]]) -> None:
        self.last_order_id = order_id
        self.lines = {}

    # --- helpers ----------------------------------------------------------------------

    def _require_open(self) -> None:
        if self.merged_into is not None:
            raise CartClosed("this guest cart was merged into an account's cart")

    def _held(self, sku: str) -> str:
        sku = normalise_sku(sku)
        if sku not in self.lines:
            raise LineNotInCart(f"no line for SKU {sku} in this cart")
        return sku


def _currency(entry: Mapping[str, Any]) -> str:
    return str(entry["unit_price"]["currency"])


def open_cart(owner_id: UUID) -> Cart:
    """The account's cart (its id follows from the owner)."""
    return Cart(id=cart_id_for(owner_id), owner_id=owner_id)


def open_guest_cart(cart_id: UUID) -> Cart:
    return Cart(id=cart_id, owner_id=None)

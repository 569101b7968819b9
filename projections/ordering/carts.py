"""The cart view: what a shopper sees of their cart, in Postgres or in Redis.

``cart_state`` folds one cart event into the view's state (a JSON object), the
same for both stores, so they cannot disagree:

    {"cart_id", "owner_id", "lines": [{"product_id", "sku", "quantity",
     "unit_price", "line_total"}], "currency", "total", "price_changes",
     "merged_into", "last_order_id", "version", "updated_at"}

``price_changes`` are the lines whose price moved (or that can no longer be
bought) at the last checkout attempt: shown until the cart changes again.

Postgres (``CartsView``, the embedded default) keeps one row per cart, written with
the tracked position in one transaction. Redis (``RedisCartStore`` in infra, behind
``CartStore``) keeps a hash per cart guarded by the cart's version: an event is
applied only onto the version just before it, an older or repeated one changes
nothing, and a cart Redis lost (or never had) is rebuilt from the cart's events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.projection import Projection
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.carts import Cart
from domain.lines import line_total, lines_total
from projections.engine import View, ViewProjection

CartState = dict[str, Any]


def _line(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "product_id": str(entry["product_id"]),
        "sku": str(entry["sku"]),
        "quantity": int(entry["quantity"]),
        "unit_price": dict(entry["unit_price"]),
        "line_total": line_total(entry).to_dict(),
    }


def cart_state(state: CartState | None, event: Any) -> CartState:
    """The view of a cart after ``event`` (``state`` None: before its first event)."""
    if state is None:
        state = {
            "cart_id": str(event.originator_id),
            "owner_id": None,
            "lines": [],
            "price_changes": [],
            "merged_into": None,
            "last_order_id": None,
        }
    lines = {entry["sku"]: entry for entry in state["lines"]}
    changes: list[dict[str, Any]] = []
    match event:
        case Cart.Opened():
            state["owner_id"] = None if event.owner_id is None else str(event.owner_id)
        case Cart.LineAdded():
            held = lines[event.sku]["quantity"] if event.sku in lines else 0
            lines[event.sku] = _line(
                {
                    "product_id": event.product_id,
                    "sku": event.sku,
                    "quantity": held + event.quantity,
                    "unit_price": event.unit_price,
                }
            )
        case Cart.QuantityChanged():
            lines[event.sku] = _line({**lines[event.sku], "quantity": event.quantity})
        case Cart.LineRemoved():
            lines.pop(event.sku, None)
        case Cart.Cleared():
            lines = {}
        case Cart.GuestCartMerged():
            lines.update({str(entry["sku"]): _line(entry) for entry in event.lines})
        case Cart.MergedInto():
            state["merged_into"] = str(event.cart_id)
            lines = {}
        case Cart.PricesRechecked():
            changes = list(event.changes)
            for change in changes:
                if change["current"] is None:
                    lines.pop(change["sku"], None)
                else:
                    lines[change["sku"]] = _line(
                        {**lines[change["sku"]], "unit_price": change["current"]}
                    )
        case Cart.CheckedOut():
            state["last_order_id"] = str(event.order_id)
            lines = {}
    state["lines"] = list(lines.values())
    currency = next((entry["unit_price"]["currency"] for entry in state["lines"]), None)
    state["currency"] = currency
    state["total"] = None if currency is None else lines_total(state["lines"], currency).to_dict()
    state["price_changes"] = changes
    state["version"] = event.originator_version
    state["updated_at"] = event.timestamp.isoformat()
    return state


def empty_cart(cart_id: UUID) -> CartState:
    """What a cart without events looks like to its shopper."""
    return {
        "cart_id": str(cart_id),
        "lines": [],
        "currency": None,
        "total": None,
        "price_changes": [],
        "merged_into": None,
        "last_order_id": None,
        "version": 0,
        "updated_at": None,
    }


class CartStore(Protocol):
    """Where carts live when not in Postgres (Redis)."""

    def apply(self, cart_id: UUID, event: Any, history: CartHistory) -> None:
        """Fold ``event`` into the stored cart, once (older and repeated events
        change nothing; a missing or stale cart is rebuilt from ``history``)."""

    def get_or_rebuild(self, cart_id: UUID, history: CartHistory) -> CartState | None:
        """The stored cart, rebuilt from ``history`` when the store lost it."""


class CartHistory(Protocol):
    def cart_events(self, cart_id: UUID) -> Iterable[Any]:
        """Every event of the cart, oldest first."""
        ...


def rebuilt(events: Iterable[Any]) -> CartState | None:
    state: CartState | None = None
    for event in events:
        if isinstance(event, Cart.Event):
            state = cart_state(state, event)
    return state


class RedisCartsProjection(Projection[TrackingRecorder]):
    """The cart view in a ``CartStore``: the store's version guard makes applying an
    event twice harmless, so the tracked position (in Postgres) only says how far
    the view has got (read-your-writes, lag), and a redelivery after a crash is
    simply applied again."""

    name = "carts"
    follows = ("ordering",)

    def __init__(self, view: TrackingRecorder, *, store: CartStore, history: CartHistory) -> None:
        super().__init__(view)
        self._store = store
        self._history = history

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if isinstance(domain_event, Cart.Event):
            self._store.apply(domain_event.originator_id, domain_event, self._history)
        with contextlib.suppress(IntegrityError):  # tracked by another delivery
            self.view.insert_tracking(tracking)


# --- Postgres ---------------------------------------------------------------------------


class CartsView(View):
    name = "carts"
    follows = ("ordering",)
    tables = {
        "carts": """
            cart_id uuid PRIMARY KEY,
            owner_id uuid,
            state jsonb NOT NULL,
            version integer NOT NULL,
            updated_at timestamptz NOT NULL
        """
    }


class CartsProjection(ViewProjection[CartsView]):
    name = "carts"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        if not isinstance(event, Cart.Event):
            return
        cursor.execute(
            "SELECT state FROM carts WHERE cart_id = %s FOR UPDATE", (event.originator_id,)
        )
        row = cursor.fetchone()
        state = cart_state(None if row is None else row["state"], event)
        cursor.execute(
            "INSERT INTO carts (cart_id, owner_id, state, version, updated_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (cart_id) DO UPDATE SET "
            "state = EXCLUDED.state, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
            (
                event.originator_id,
                state["owner_id"],
                Jsonb(state),
                state["version"],
                event.timestamp,
            ),
        )

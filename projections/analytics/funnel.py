"""The ``analytics_funnel`` view: it follows the ordering log (carts and orders).

One row per step a subject reached, the first time, on the day it did: carts
created, carts with a line, checkouts started (orders placed: checkout places the
order), orders confirmed, shipped, delivered and returned. A shopper's cart keeps
its id after a checkout, so the funnel counts *cart sessions*: a session opens with
the cart, or with the first line added after the cart's last checkout, and is the
subject of the first two steps (``<cart id>/<session>``); orders are the subjects of
the others.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from domain.carts import Cart
from domain.orders import Order
from projections.engine import View, ViewProjection


class Step(StrEnum):
    CARTS_CREATED = "carts_created"
    CARTS_WITH_LINE = "carts_with_line"
    CHECKOUTS_STARTED = "checkouts_started"
    ORDERS_CONFIRMED = "orders_confirmed"
    ORDERS_SHIPPED = "orders_shipped"
    ORDERS_DELIVERED = "orders_delivered"
    ORDERS_RETURNED = "orders_returned"


STEPS = list(Step)
"""The funnel's steps, in order: conversion is each step over the one before."""

_ORDER_STEPS: dict[type[Any], Step] = {
    Order.Placed: Step.CHECKOUTS_STARTED,
    Order.Confirmed: Step.ORDERS_CONFIRMED,
    Order.ConfirmedWithoutPayment: Step.ORDERS_CONFIRMED,
    Order.Shipped: Step.ORDERS_SHIPPED,
    Order.Delivered: Step.ORDERS_DELIVERED,
    Order.Returned: Step.ORDERS_RETURNED,
}


class FunnelView(View):
    name = "analytics_funnel"
    follows = ("ordering",)
    tables = {
        "analytics_funnel_steps": """
            step text NOT NULL,
            subject text NOT NULL,
            day date NOT NULL,
            PRIMARY KEY (step, subject)
        """,
        "analytics_cart_sessions": """
            cart_id uuid PRIMARY KEY,
            session integer NOT NULL,
            open boolean NOT NULL,
            lined boolean NOT NULL
        """,
    }
    indexes = [
        "CREATE INDEX IF NOT EXISTS analytics_funnel_day ON {schema}.analytics_funnel_steps "
        "(day, step)",
    ]


class FunnelProjection(ViewProjection[FunnelView]):
    name = "analytics_funnel"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        step = next((s for cls, s in _ORDER_STEPS.items() if isinstance(event, cls)), None)
        if step is not None:
            _reach(cursor, step, str(event.originator_id), event.at)
            return
        if not isinstance(event, Cart.Event):
            return
        cart_id: UUID = event.originator_id
        match event:
            case Cart.Opened():
                cursor.execute(
                    "INSERT INTO analytics_cart_sessions VALUES (%s, 1, true, false) "
                    "ON CONFLICT (cart_id) DO NOTHING",
                    (cart_id,),
                )
                _reach(cursor, Step.CARTS_CREATED, f"{cart_id}/1", event.timestamp)
            case Cart.LineAdded():
                self._lined(cursor, cart_id, event)
            case Cart.GuestCartMerged() if event.lines:
                self._lined(cursor, cart_id, event)
            case Cart.CheckedOut():
                cursor.execute(
                    "UPDATE analytics_cart_sessions SET open = false, lined = false "
                    "WHERE cart_id = %s",
                    (cart_id,),
                )

    @staticmethod
    def _lined(cursor: Cursor[DictRow], cart_id: UUID, event: Any) -> None:
        """A line in the cart: a new session if the last one ended in a checkout,
        and the session's first line."""
        cursor.execute(
            "SELECT session, open, lined FROM analytics_cart_sessions WHERE cart_id = %s",
            (cart_id,),
        )
        row = cursor.fetchone()
        if row is None:  # a cart opened before this view's history: a session of its own
            row = {"session": 1, "open": True, "lined": False}
            _reach(cursor, Step.CARTS_CREATED, f"{cart_id}/1", event.timestamp)
        session = row["session"]
        if not row["open"]:
            session += 1
            _reach(cursor, Step.CARTS_CREATED, f"{cart_id}/{session}", event.timestamp)
        if not row["open"] or not row["lined"]:
            _reach(cursor, Step.CARTS_WITH_LINE, f"{cart_id}/{session}", event.timestamp)
        cursor.execute(
            "INSERT INTO analytics_cart_sessions VALUES (%s, %s, true, true) "
            "ON CONFLICT (cart_id) DO UPDATE SET session = EXCLUDED.session, open = true, "
            "lined = true",
            (cart_id, session),
        )


def _reach(cursor: Cursor[DictRow], step: Step, subject: str, at: datetime) -> None:
    """``subject`` reached ``step`` on the (UTC) day of ``at``, unless it had before."""
    cursor.execute(
        "INSERT INTO analytics_funnel_steps VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (step.value, subject, at.astimezone(UTC).date()),
    )

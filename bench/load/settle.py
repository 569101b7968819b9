"""After the load: every order placed decided (confirmed or rejected) in the event
store, and how long after the last request the orders view had applied its log."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.utils import get_topic

from domain.orders import Order
from infra.entrypoints.status import log_head
from projections.positions import tracked_position

DECIDED = [get_topic(e) for e in (Order.Confirmed, Order.ConfirmedWithoutPayment, Order.Rejected)]


@dataclass(frozen=True)
class Settled:
    placed: int
    confirmed: int
    rejected: int
    undecided: int
    """Placed orders without a decision once ``timeout`` had passed."""
    orders_view_s: float
    """Seconds from the call until the orders view had applied the ordering log's
    head (as it was at the call)."""


def _counts(conn: psycopg.Connection[Any]) -> tuple[int, int, int]:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE topic = %s), count(*) FILTER (WHERE topic = ANY(%s)), "
        "count(*) FILTER (WHERE topic = %s) FROM public.ordering_events",
        (get_topic(Order.Placed), DECIDED[:2], DECIDED[2]),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def settle(conninfo: str, timeout: float = 60.0) -> Settled:
    started = time.monotonic()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        head = log_head(conn, "ordering")
        view_s = float("nan")
        while time.monotonic() - started < timeout:
            if view_s != view_s and tracked_position(conn, "orders", "ordering") >= head:
                view_s = time.monotonic() - started
            placed, confirmed, rejected = _counts(conn)
            if placed == confirmed + rejected and view_s == view_s:
                break
            time.sleep(0.2)
        placed, confirmed, rejected = _counts(conn)
    return Settled(placed, confirmed, rejected, placed - confirmed - rejected, view_s)

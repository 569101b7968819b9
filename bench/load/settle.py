"""After the load: every order placed decided (confirmed or rejected) in the event
store, and how long after the last request the orders view had applied its log;
then the audit of faults runs (``audit``): nothing lost, nothing doubled."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.utils import get_topic

from domain.orders import Order
from infra.entrypoints.status import every_status, log_head
from infra.settings import Settings
from infra.wiring.process import bootstrap
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


def connect(conninfo: str, patience: float = 60.0) -> psycopg.Connection[Any]:
    """A connection, waiting out a full server: the machine's Postgres (100
    connections) is shared, and losing a run's figures to others' test databases at
    its very end would waste the run."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as error:
            if "too many clients" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


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
    with connect(conninfo) as conn:
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


# --- nothing lost, nothing doubled ------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    """The orders against what the shoppers were told (checked after ``settle``)."""

    accepted: int
    """Checkouts answered 202 (their order ids)."""
    accepted_twice: int
    """Order ids answered to two checkouts (two keys, one order: never expected)."""
    lost: int
    """Accepted order ids with no ``Order.Placed`` in the store."""
    placed_unanswered: int
    """Orders placed whose 202 no shopper saw (the answer lost to a fault and the
    retries given up, or the run ended first): placed once all the same."""
    placed_twice: int
    """Order ids with more than one ``Order.Placed``."""
    decided_twice: int
    """Orders with more than one decision (confirmed or rejected)."""
    undecided: int
    """Placed orders without a decision."""
    captured_twice: int
    """Orders with more than one ``Order.PaymentCaptured``."""
    overcaptured: int
    """Gateway payments that captured more than they authorized."""
    lagging: list[str]
    """Projections (``name/log: lag``) short of their log's head once ``timeout``
    had passed."""

    @property
    def clean(self) -> bool:
        return not (
            self.accepted_twice
            or self.lost
            or self.placed_twice
            or self.decided_twice
            or self.undecided
            or self.captured_twice
            or self.overcaptured
            or self.lagging
        )

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "clean": self.clean}


def _per_order(conn: psycopg.Connection[Any], topics: list[str]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT originator_id::text, count(*) FROM public.ordering_events "
        "WHERE topic = ANY(%s) GROUP BY originator_id",
        (topics,),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def _overcaptured(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM public.payment_gateway_payments WHERE captured > authorized"
    ).fetchone()
    return int(row[0]) if row else 0


def _lagging(conninfo: str, settings: Settings, timeout: float) -> list[str]:
    """Every projection of the running system against its logs' heads, until none
    lags or ``timeout``; the ones still behind."""
    container = bootstrap(settings)
    deadline = time.monotonic() + timeout
    try:
        with connect(conninfo) as conn:
            while True:
                behind = [s for s in every_status(conn, container) if s.lag > 0]
                if not behind or time.monotonic() > deadline:
                    return [f"{s.name}/{s.log}: {s.lag}" for s in behind]
                time.sleep(0.5)
    finally:
        container.close()


def audit(conninfo: str, settings: Settings, accepted: list[str], timeout: float = 60.0) -> Audit:
    """Every 202'd checkout is one order, placed once and decided once; nothing
    captured twice; every read model at its logs' heads."""
    lagging = _lagging(conninfo, settings, timeout)
    with connect(conninfo) as conn:
        placed = _per_order(conn, [get_topic(Order.Placed)])
        decided = _per_order(conn, DECIDED)
        captured = _per_order(conn, [get_topic(Order.PaymentCaptured)])
        overcaptured = _overcaptured(conn)
    ids = set(accepted)
    return Audit(
        accepted=len(accepted),
        accepted_twice=len(accepted) - len(ids),
        lost=len(ids - set(placed)),
        placed_unanswered=len(set(placed) - ids),
        placed_twice=sum(1 for n in placed.values() if n > 1),
        decided_twice=sum(1 for n in decided.values() if n > 1),
        undecided=sum(1 for order in placed if order not in decided),
        captured_twice=sum(1 for n in captured.values() if n > 1),
        overcaptured=overcaptured,
        lagging=lagging,
    )

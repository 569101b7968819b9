"""Business and pipeline counters for /metrics, counted at scrape time from the read
models and the logs: exact whichever process is scraped (and however many serve),
and never counting a fact that was rolled back.

- ``eventshop_orders_placed_total``, ``eventshop_orders_confirmed_total`` (from the
  orders' status timeline), ``eventshop_orders_rejected_total{reason}`` (the
  rejection's cause, ``REJECTION_CAUSES``);
- ``eventshop_payments_declined_total{gateway, code}`` (the gateway's decline code);
- ``eventshop_refunds_total{currency}`` and ``eventshop_refunded_amount_total{currency}``;
- ``eventshop_log_events_total{log}``: each event store's head position, so its
  ``rate`` is the write rate per context (ids skipped by rolled-back inserts count);
- ``eventshop_relay_confirmed_total{log}`` and ``eventshop_relay_lag{log}``: the
  position the relay has confirmed into Kafka (scaled mode only), its ``rate`` the
  relay's throughput, and how far it trails the head.

The stream workers' throughput and lag are ``eventshop_projection_position`` and
``eventshop_projection_lag`` (``metrics.ProjectionLagCollector``): the workers keep
the same tracking positions as the embedded runner.

The counts are whole-table counts (one index scan for the rejections, a scan of the
orders and of their timeline for the rest), cached ``cache_seconds`` per process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg import Connection
from psycopg.sql import SQL
from psycopg_pool import ConnectionPool

from infra.entrypoints.status import log_head

REJECTION_CAUSES = (
    ("not enough stock%", "out_of_stock"),
    ("the stock could not be reserved%", "stock_unavailable"),
    ("payment declined%", "payment_declined"),
    ("the payment could not be made%", "payment_refused"),
    ("the payment was not authenticated%", "authentication_timeout"),
)
"""The beginnings of the checkout saga's rejection reasons (``checkout_saga``,
``authentication_timeouts``) and the bounded label each is counted under; any other
reason is ``other`` (a reason is free text: the gateway's message)."""

_REJECTION_CAUSE = (
    "CASE "
    + " ".join("WHEN rejection_reason LIKE %s THEN %s" for _ in REJECTION_CAUSES)
    + " ELSE 'other' END"
)
_REJECTED = SQL(
    "SELECT {0} AS cause, count(*) FROM read.orders WHERE status = 'rejected' GROUP BY cause"
).format(SQL(_REJECTION_CAUSE))  # our own constant text (placeholders), never input
_DECLINED = (
    "SELECT p.gateway, coalesce(p.failure_code, 'unknown'), count(*) "
    "FROM read.payment_history h JOIN read.payments p USING (payment_id) "
    "WHERE h.kind = 'declined' GROUP BY 1, 2"
)
_REFUNDED = (
    "SELECT p.currency, count(*), coalesce(sum(h.amount), 0) "
    "FROM read.payment_history h JOIN read.payments p USING (payment_id) "
    "WHERE h.kind = 'refunded' GROUP BY 1"
)


class BusinessCollector(Collector):
    def __init__(
        self,
        pool: ConnectionPool[Any],
        logs: list[str],
        cache_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._logs = logs
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._families: list[Metric] = []
        self._looked_at: float | None = None
        self._lock = threading.Lock()  # scrapes run in the threadpool, maybe two at once

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = self._monotonic()
            if self._looked_at is None or now - self._looked_at >= self._cache_seconds:
                with self._pool.connection() as conn:
                    self._families = [*_orders(conn), *_payments(conn), *_logs(conn, self._logs)]
                self._looked_at = now
            families = self._families
        yield from families


def _count(conn: Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _orders(conn: Connection[Any]) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "eventshop_orders_placed",
        "Orders placed (checkouts accepted)",
        value=_count(conn, "SELECT count(*) FROM read.orders"),
    )
    yield CounterMetricFamily(
        "eventshop_orders_confirmed",
        "Orders confirmed: stock reserved and payment authorized (or nothing to pay)",
        value=_count(conn, "SELECT count(*) FROM read.order_timeline WHERE status = 'confirmed'"),
    )
    rejected = CounterMetricFamily(
        "eventshop_orders_rejected", "Orders rejected, by cause", labels=["reason"]
    )
    params = [value for pair in REJECTION_CAUSES for value in pair]
    for cause, count in conn.execute(_REJECTED, params).fetchall():
        rejected.add_metric([cause], count)
    yield rejected


def _payments(conn: Connection[Any]) -> Iterator[Metric]:
    declined = CounterMetricFamily(
        "eventshop_payments_declined",
        "Payment authorizations declined, by gateway and decline code",
        labels=["gateway", "code"],
    )
    for gateway, code, count in conn.execute(_DECLINED).fetchall():
        declined.add_metric([gateway, code], count)
    refunds = CounterMetricFamily("eventshop_refunds", "Refunds made", labels=["currency"])
    amount = CounterMetricFamily(
        "eventshop_refunded_amount", "Amount refunded, by currency", labels=["currency"]
    )
    for currency, count, total in conn.execute(_REFUNDED).fetchall():
        refunds.add_metric([currency], count)
        amount.add_metric([currency], float(total))
    yield from (declined, refunds, amount)


def _logs(conn: Connection[Any], logs: list[str]) -> Iterator[Metric]:
    heads = {log: log_head(conn, log) for log in logs}
    events = CounterMetricFamily(
        "eventshop_log_events", "Events written to the log (its head position)", labels=["log"]
    )
    for log, head in heads.items():
        events.add_metric([log], head)
    yield events
    confirmed = CounterMetricFamily(
        "eventshop_relay_confirmed",
        "Position of the log the relay has confirmed into Kafka",
        labels=["log"],
    )
    lag = GaugeMetricFamily(
        "eventshop_relay_lag", "Positions written but not yet in Kafka", labels=["log"]
    )
    relayed = conn.execute("SELECT to_regclass('public.stream_relay_positions')").fetchone()
    if relayed is not None and relayed[0] is not None:  # the relay has run here (scaled mode)
        for log, position in conn.execute(
            "SELECT log, position FROM public.stream_relay_positions"
        ).fetchall():
            confirmed.add_metric([log], position)
            lag.add_metric([log], max(heads.get(log, position) - position, 0))
    yield from (confirmed, lag)

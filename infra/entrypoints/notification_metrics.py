"""Prometheus metrics of notifications.

- ``notifications_{sent,failed,suppressed}_total{channel}`` and
  ``notification_delivery_seconds{channel}`` (decision to sent) are counted by
  ``on_outcome``, the delivery loops' listener: in the process that runs them.
- ``notification_queue_depth{channel}`` asks the queue at scrape time.
- ``notifications_decided_total{kind}`` is counted from ``notify.notifications``: the
  notifier writes decisions inside its tracking transaction and nothing runs after
  that commit, so a count kept beside it would count a rolled-back batch twice. Each
  process counts only the rows decided since its last look (cached ``cache_seconds``)
  and adds them up; the first look counts them all. An index on ``decided_at`` keeps
  a look small; without it, each look scans the table."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from commands.notifications.ports import DeliveryQueue, Outcome, Pending
from domain.notifications import Channel, Kind

# Unregistered: each app's registry takes them (``collectors``), as many apps as a
# process makes (tests make several).
SENT = Counter("notifications_sent", "Deliveries sent", ["channel"], registry=None)
FAILED = Counter("notifications_failed", "Deliveries failed for good", ["channel"], registry=None)
SUPPRESSED = Counter(
    "notifications_suppressed",
    "Deliveries not sent: a suppressed address",
    ["channel"],
    registry=None,
)
DELIVERY_SECONDS = Histogram(
    "notification_delivery_seconds",
    "From the decision to the provider's acceptance (quiet hours fall in the top buckets)",
    ["channel"],
    # Retries' backoff reaches minutes, quiet hours a night.
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600),
    registry=None,
)
COUNTED = (SENT, FAILED, SUPPRESSED, DELIVERY_SECONDS)
"""What ``on_outcome`` counts."""
_FINAL = {"sent": SENT, "failed": FAILED, "suppressed": SUPPRESSED}
for _channel in Channel:  # every series from the start, at 0: rate() needs a baseline
    for _counter in _FINAL.values():
        _counter.labels(_channel.value)
    DELIVERY_SECONDS.labels(_channel.value)

SETTLE_SECONDS = 60.0
"""How long after its ``decided_at`` a decision is counted: it commits with its batch
(at most a pull's 500 events) later than it was stamped, and one counted before it
committed would never be counted."""


def on_outcome(pending: Pending, outcome: Outcome) -> None:
    """``delivery.OutcomeListener``: a retry is not an outcome yet, and not counted."""
    counter = _FINAL.get(outcome.outcome)
    if counter is None:
        return
    channel = pending.channel.value
    counter.labels(channel).inc()
    if outcome.outcome == "sent":
        elapsed = datetime.now(UTC) - pending.created_at
        DELIVERY_SECONDS.labels(channel).observe(max(elapsed.total_seconds(), 0.0))


class NotificationCollector(Collector):
    """The queue's depth per channel, and the decisions per kind."""

    def __init__(
        self,
        queue: DeliveryQueue,
        pool: ConnectionPool[Any],
        cache_seconds: float = 10.0,
        settle_seconds: float = SETTLE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._pool = pool
        self._cache_seconds = cache_seconds
        self._settle = timedelta(seconds=settle_seconds)
        self._monotonic = monotonic
        self._decided = dict.fromkeys((kind.value for kind in Kind), 0)
        self._counted_to: datetime | None = None
        self._looked_at: float | None = None
        self._lock = threading.Lock()  # scrapes run in the threadpool, maybe two at once

    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The names, without a query: registering then asks nothing of the database."""
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        depth, decided = _families()
        for channel, count in self._queue.depth().items():
            depth.add_metric([channel.value], count)
        for kind, count in self._decisions().items():
            decided.add_metric([kind], count)
        yield from (depth, decided)

    def _decisions(self) -> dict[str, int]:
        with self._lock:
            now = self._monotonic()
            if self._looked_at is None or now - self._looked_at >= self._cache_seconds:
                self._count_new()
                self._looked_at = now
            return dict(self._decided)

    def _count_new(self) -> None:
        since = self._counted_to or datetime.min.replace(tzinfo=UTC)
        # Never back (a clock stepped back): a window counted twice would count twice.
        until = max(since, datetime.now(UTC) - self._settle)
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT kind, count(*) FROM notify.notifications "
                "WHERE decided_at > %s AND decided_at <= %s GROUP BY kind",
                (since, until),
            ).fetchall()
        for kind, count in rows:
            self._decided[kind] = self._decided.get(kind, 0) + count
        self._counted_to = until


def _families() -> tuple[GaugeMetricFamily, CounterMetricFamily]:
    return (
        GaugeMetricFamily("notification_queue_depth", "Deliveries waiting", labels=["channel"]),
        CounterMetricFamily("notifications_decided", "Notifications decided", labels=["kind"]),
    )

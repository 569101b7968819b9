"""Prometheus metrics computed at scrape time from the database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infra.entrypoints.status import every_status
from projections.dead_letters import open_counts

if TYPE_CHECKING:
    from infra.wiring.process import Container


class ProjectionLagCollector(Collector):
    def __init__(self, container: Container) -> None:
        self._container = container

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["projection", "log"]
        position = GaugeMetricFamily(
            "eventshop_projection_position", "Last position applied", labels=labels
        )
        head = GaugeMetricFamily(
            "eventshop_log_head", "Last position written to the log", labels=labels
        )
        lag = GaugeMetricFamily(
            "eventshop_projection_lag", "Positions not yet applied", labels=labels
        )
        letters = GaugeMetricFamily(
            "eventshop_dead_letters",
            "Events a projection could not apply, not yet replayed",
            labels=["projection"],
        )
        with self._container.pool.connection() as conn:
            for name, count in open_counts(conn).items():
                letters.add_metric([name], count)
            for status in every_status(conn, self._container):
                key = [status.name, status.log]
                position.add_metric(key, status.position)
                head.add_metric(key, status.head)
                lag.add_metric(key, status.lag)
        yield from (position, head, lag, letters)

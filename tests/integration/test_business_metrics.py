"""The scrape-time counters of the logs and the relay (``BusinessCollector``) over a
real database: the log heads, the relay's confirmed positions and its lag, and the
few seconds each process keeps an answer. (Orders, declines and refunds:
tests/e2e_own_server/test_metrics_and_logs.py.)"""

from __future__ import annotations

import psycopg

from infra.entrypoints.business_metrics import BusinessCollector
from infra.wiring.process import Container
from streams import relay_lease
from tests.support.users_client import STRONG_PASSWORD, unique_email


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def samples(collector: BusinessCollector) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_log_heads_and_the_relay_position_are_counted(container: Container) -> None:
    clock = Clock()
    collector = BusinessCollector(container.pool, ["users", "ordering"], 5.0, clock)
    first = samples(collector)
    assert first[("eventshop_log_events_total", ("ordering",))] == 0
    assert not [name for name, _ in first if name.startswith("eventshop_relay")]  # no relay

    for _ in range(3):
        container.user_commands.create_admin(unique_email("head"), STRONG_PASSWORD, "Head")
    with psycopg.connect(container.conninfo, autocommit=True) as conn:
        head = conn.execute("SELECT max(notification_id) FROM users_events").fetchone()
        assert head is not None and head[0] >= 3
        conn.execute(relay_lease.DDL)
        conn.execute(
            "INSERT INTO public.stream_relay_positions (log, position, partition_offsets) "
            "VALUES ('users', 1, '{}')"
        )
    assert samples(collector) == first  # within the cache's 5 s: the same answer

    clock.now = 5.0
    later = samples(collector)
    assert later[("eventshop_log_events_total", ("users",))] == head[0]
    assert later[("eventshop_relay_confirmed_total", ("users",))] == 1
    assert later[("eventshop_relay_lag", ("users",))] == head[0] - 1
    assert later[("eventshop_orders_placed_total", ())] == 0

"""Puts one log's relayed events back in the log's order.

Messages are keyed by aggregate, so a log's events arrive over several partitions
and out of log order; copies arrive after a relay restart or a consumer rebalance.
Each event names the log's previous event (``prev_position``), and the log has gaps
(ids of rolled-back inserts), so "the event after P" is the one whose previous is P:
a chain with no guessing. A read model at position P takes the chain from P; nothing
after a missing event is handed out, so a tracked position always means "every event
up to here is applied" (what read-your-writes waits on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from streams.kafka_codec import RelayedEvent

Ack = Callable[[], object]


@dataclass
class _Held:
    event: RelayedEvent
    acks: list[Ack] = field(default_factory=list)


class Resequencer:
    def __init__(self) -> None:
        self._after: dict[int, _Held] = {}
        """prev_position -> the event that follows it."""

    def __len__(self) -> int:
        return len(self._after)

    def offer(self, event: RelayedEvent, ack: Ack, applied_by_all: int) -> list[Ack]:
        """Hold ``event`` until it is applied; returns the acks now due (a copy of an
        event every read model has already applied is due at once)."""
        if event.position <= applied_by_all:
            return [ack]
        held = self._after.setdefault(event.prev_position, _Held(event))
        held.acks.append(ack)
        return []

    def chain(self, position: int, limit: int) -> list[RelayedEvent]:
        """The held events that follow ``position`` without a gap, in log order."""
        run: list[RelayedEvent] = []
        while len(run) < limit and (held := self._after.get(position)) is not None:
            run.append(held.event)
            position = held.event.position
        return run

    def waiting_after(self, position: int) -> int | None:
        """When events after ``position`` are held but the next one is missing: the
        earliest held event's previous position (the gap is ``position`` to it)."""
        if position in self._after:
            return None
        later = [prev for prev, held in self._after.items() if held.event.position > position]
        return min(later) if later else None

    def release(self, applied_by_all: int) -> list[Ack]:
        """Forget the events every read model has applied; returns their acks."""
        done = [prev for prev, held in self._after.items() if held.event.position <= applied_by_all]
        return [ack for prev in done for ack in self._after.pop(prev).acks]

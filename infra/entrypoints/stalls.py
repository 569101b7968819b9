"""Which projections are stalled: behind their log, and their position has not moved
for longer than a bound. The logs keep no commit times, so the time a projection has
stood still is measured between looks: a projection is first seen behind at the look
that finds it so, and is stalled only once it is still there, behind, a bound later."""

from __future__ import annotations

from dataclasses import dataclass, field

from projections.positions import ProjectionStatus


@dataclass(frozen=True)
class Stall:
    status: ProjectionStatus
    seconds: float
    """How long it has stood still behind its log (at least: since it was first seen so)."""


@dataclass
class StallWatch:
    bound: float
    """Seconds a projection may stand still behind its log."""
    _since: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    """(projection, log) -> the position it stands at, and since when (it was seen so)."""

    def stalled(self, statuses: list[ProjectionStatus], now: float) -> list[Stall]:
        """Those of ``statuses`` (one look, at ``now``, monotonic seconds) stalled."""
        standing: dict[tuple[str, str], tuple[int, float]] = {}
        stalls = []
        for status in statuses:
            if status.lag == 0:
                continue
            key = (status.name, status.log)
            position, since = self._since.get(key, (status.position, now))
            if position != status.position:
                since = now
            standing[key] = (status.position, since)
            if now - since > self.bound:
                stalls.append(Stall(status, now - since))
        self._since = standing
        return stalls

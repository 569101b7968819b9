"""A projection is stalled once it has stood behind its log, at one position, for
longer than the bound; moving, or catching up, restarts the clock."""

from __future__ import annotations

from infra.entrypoints.stalls import StallWatch
from projections.positions import ProjectionStatus


def at(position: int, head: int = 10, name: str = "user_profiles") -> ProjectionStatus:
    return ProjectionStatus(name, "users", 1, position, head)


def stalled(watch: StallWatch, now: float, *statuses: ProjectionStatus) -> list[str]:
    return [f"{s.status.name}@{s.seconds:g}" for s in watch.stalled(list(statuses), now)]


def test_behind_at_one_position_past_the_bound_is_stalled() -> None:
    watch = StallWatch(bound=5)
    assert stalled(watch, 100, at(3)) == []  # first seen behind: not stalled at once
    assert stalled(watch, 105, at(3)) == []  # the bound itself is allowed
    assert stalled(watch, 106, at(3)) == ["user_profiles@6"]


def test_moving_restarts_the_clock_however_far_behind() -> None:
    watch = StallWatch(bound=5)
    for now, position in ((100, 1), (104, 2), (108, 3), (112, 4)):
        assert stalled(watch, now, at(position, head=1000)) == []
    assert stalled(watch, 118, at(4, head=1000)) == ["user_profiles@6"]


def test_caught_up_is_forgotten_and_a_new_lag_starts_a_new_clock() -> None:
    watch = StallWatch(bound=5)
    stalled(watch, 100, at(3))
    assert stalled(watch, 103, at(10)) == []  # caught up
    assert stalled(watch, 104, at(10, head=11)) == []
    assert stalled(watch, 109, at(10, head=11)) == []
    assert stalled(watch, 110, at(10, head=11)) == ["user_profiles@6"]


def test_each_projection_and_log_is_watched_on_its_own() -> None:
    watch = StallWatch(bound=5)
    stalled(watch, 100, at(3), at(3, name="notifier"))
    assert stalled(watch, 106, at(3), at(4, name="notifier")) == ["user_profiles@6"]

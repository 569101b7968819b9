"""``shop dlq``: the open dead letters of every projection and policy, and their
replay after a fix, in the embedded mode as in the scaled one (the letters live in
the read models' database either way; ``projections.dead_letters``)."""

from __future__ import annotations

from itertools import groupby

from eventsourcing.postgres import PostgresRecorder

from infra.wiring.process import Container
from projections import dead_letters
from projections.dead_letters import DeadLetter
from projections.engine import View
from streams.poison import Replayed, replay


def open_letters(container: Container, projection: str | None = None) -> list[DeadLetter]:
    with container.pool.connection() as conn:
        return dead_letters.open_letters(conn, projection)


def replay_open(container: Container, projection: str | None = None) -> list[Replayed]:
    """Replay the open letters (of one projection, or all), per projection and log in
    log order, into the generation being served."""
    apps = {app.name: app for app in container.applications()}
    specs = {spec.name: spec for spec in container.specs}
    active = container.active_generations()
    outcomes: list[Replayed] = []
    letters = open_letters(container, projection)
    for (name, log), group in groupby(letters, key=lambda x: (x.projection, x.log)):
        batch = list(group)
        spec = specs.get(name)
        if spec is None or log not in apps:
            reason = f"no projection {name!r} following a log {log!r} in this release"
            outcomes += [Replayed(letter, reason) for letter in batch]
            continue
        view = spec.make_view(active.get(name) or container.ensure_generation(spec))
        try:
            assert isinstance(view, View), "every spec's view is a View"
            outcomes += replay(batch, apps[log], view, spec.make_projection(view))
        finally:
            if isinstance(view, PostgresRecorder):
                view.datastore.close()
    return outcomes

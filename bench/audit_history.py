"""What the audit view costs: the bytes an actor adds to each stored event, and the
time of the audit reads on one aggregate with a long history.

On a fresh PostgreSQL database (encrypted at rest, as production runs), one account
gets ``--events`` profile changes, saved one command at a time as an admin's
requests would (``acting_as`` an HTTP actor). Then, each ``--repeat`` times (the
median is printed): a history page of 50 at the start and at the end of the history
(a keyset page costs the same however deep), the state at a version in the middle,
the state as of a time in the middle (decodes the events up to it), and now.

    uv run python -m bench.audit_history --events 2000 --server <postgres conninfo>
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

from pydantic import SecretStr

from bench._common import DEFAULT_SERVER, create_database, drop_database, log, machine_lines, median
from commands.actors import acting_as
from commands.application import ContextApplication
from domain.actors import Actor, ActorKind
from domain.carts import open_cart
from infra.postgres.aggregate_history import PostgresAggregateHistory
from infra.settings import Settings
from infra.wiring.process import bootstrap
from projections.audit.history import AuditedKind

KEY = "3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8="
PASSWORD = "correct-horse-battery-staple-42"
HTTP_ACTOR = Actor(ActorKind.USER, str(uuid4()), "9f86d081884c7d659a2feaa0c55ad015", "203.0.113.77")


class Store(ContextApplication):
    pass


def actor_bytes() -> tuple[int, int]:
    """Stored state bytes of a new cart's event, (without an actor, with an HTTP one),
    unencrypted and uncompressed (a cipher adds its own constant overhead)."""
    sizes = []
    for actor in (None, HTTP_ACTOR):
        store = Store(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        cart = open_cart(uuid4())
        if actor is None:
            store.save(cart)
            (stored,) = store.recorder.select_notifications(1, 1)
            state = store.mapper.transcoder.decode(stored.state)
            state.pop("actor")
            sizes.append(len(store.mapper.transcoder.encode(state)))
        else:
            with acting_as(actor):
                store.save(cart)
            (stored,) = store.recorder.select_notifications(1, 1)
            sizes.append(len(stored.state))
    return sizes[0], sizes[1]


def timed(call: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="Postgres maintenance conninfo")
    args = parser.parse_args()
    without, with_actor = actor_bytes()
    print("\n".join(machine_lines(args.server)))
    print(
        f"state of a cart's first event: {without} B, with an HTTP actor {with_actor} B "
        f"(+{with_actor - without} B)"
    )
    name, conninfo = create_database(args.server, "bench_audit")
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(
                database_url=conninfo,
                data_dir=Path(data_dir),
                encryption_key=SecretStr(KEY),
            )
            container = bootstrap(settings)
            try:
                container.migrate()
                users = container.user_commands
                user_id = uuid4()
                with acting_as(HTTP_ACTOR):
                    users.register(user_id, f"bench-{user_id.hex[:8]}@example.com", PASSWORD, "B")
                    started = time.perf_counter()
                    for i in range(args.events):
                        users.update_profile(user_id, {"name": f"Bench {i}"})
                log(f"{args.events} profile changes saved in {time.perf_counter() - started:.1f} s")
                history = PostgresAggregateHistory(
                    {app.name: app for app in container.applications()}
                )
                last = history.state_at(AuditedKind.USER, user_id).version
                middle = history.history(AuditedKind.USER, user_id, after=last // 2, limit=1)
                middle_at = middle.entries[0].at
                figures = {
                    "history page of 50, first": lambda: history.history(
                        AuditedKind.USER, user_id, after=0, limit=50
                    ),
                    "history page of 50, last": lambda: history.history(
                        AuditedKind.USER, user_id, after=last - 50, limit=50
                    ),
                    f"state at version {last // 2 + 1}": lambda: history.state_at(
                        AuditedKind.USER, user_id, version=last // 2 + 1
                    ),
                    "state as of the middle's time": lambda: history.state_at(
                        AuditedKind.USER, user_id, as_of=middle_at
                    ),
                    f"state now (version {last})": lambda: history.state_at(
                        AuditedKind.USER, user_id
                    ),
                }
                print(f"one account with {last} events, encrypted, median of {args.repeat}:")
                for label, call in figures.items():
                    print(f"  {label}: {timed(call, args.repeat):.1f} ms")
            finally:
                container.close()
    finally:
        drop_database(args.server, name)


if __name__ == "__main__":
    main()

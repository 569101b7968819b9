"""What sealing personal fields (ADR 0024) costs the event store's mapper: CPU per
event encoded and decoded, with the sealing mapper and with the library's plain
one over the same transcoder, alternating in one process.

The events are a user's registration and a profile change with a phone and an
address, each stamped with an HTTP actor (three to four sealed fields per event:
email, name, the profile changes, the client address); the subject's key is cached,
as it is for any active customer.

    uv run python -m bench.sealing --server <postgres conninfo>
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import Mapper

from bench._common import DEFAULT_SERVER, create_database, drop_database, machine_lines, median
from domain.actors import ACTOR, Actor, ActorKind
from domain.users import User
from infra.settings import Settings
from infra.wiring.process import bootstrap


def user_events() -> list[Any]:
    user_id = uuid4()
    user = User.register(user_id, "a.person@example.com", "argon2-hash", "A Person")
    address = {"line1": "1 rue X", "city": "Lyon", "postal_code": "69001", "country": "FR"}
    user.update_profile({"phone": "+33612345678", "addresses": [address]})
    actor = Actor(ActorKind.USER, str(user_id), "f" * 32, "203.0.113.9").as_mapping()
    events = list(user.collect_events())
    for event in events:
        object.__setattr__(event, ACTOR, actor)
    return events


def cpu_us_per_event(mapper: Mapper[Any], events: list[Any], rounds: int) -> float:
    started = time.process_time()
    for _ in range(rounds):
        for event in events:
            mapper.to_domain_event(mapper.to_stored_event(event))
    return (time.process_time() - started) / (rounds * len(events)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_SERVER, help="Postgres maintenance conninfo")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2000, help="per run")
    args = parser.parse_args()
    print("\n".join(machine_lines(args.server)))
    name, conninfo = create_database(args.server, "bench_sealing")
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            container = bootstrap(Settings(database_url=conninfo, data_dir=Path(data_dir)))
            try:
                container.migrate()
                sealing = container.users_app.mapper
                plain: Mapper[Any] = Mapper(sealing.transcoder, sealing.compressor, sealing.cipher)
                events = user_events()
                sealing.to_stored_event(events[0])  # the subject's key, made and cached
                pairs = [
                    (
                        cpu_us_per_event(plain, events, args.rounds),
                        cpu_us_per_event(sealing, events, args.rounds),
                    )
                    for _ in range(args.runs)
                ]
            finally:
                container.close()
    finally:
        drop_database(args.server, name)
    plain_us, sealing_us = median(p for p, _ in pairs), median(s for _, s in pairs)
    print(
        f"encode + decode, CPU per event, median of {args.runs}: plain {plain_us:.1f} us, "
        f"sealing {sealing_us:.1f} us (+{sealing_us - plain_us:.1f} us, "
        f"{sealing_us / plain_us:.2f}x)"
    )


if __name__ == "__main__":
    main()

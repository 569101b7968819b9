"""Projection rebuild throughput: events replayed per second into the Postgres
read models by ``infra.entrypoints.rebuild.rebuild`` (the code behind ``shop projections
rebuild``).

It writes a users log of ``--users`` accounts, each registered, verified, logged in
once and then updated ``--updates`` times (so 5 + updates events per user, plus the
email claim), saved in bulk through ``container.users_app.save``; then rebuilds each
rebuildable projection ``--runs`` times and reports the median events/s. A
"decode only" row (read the log in batches and turn each record into a domain
event, write nothing) shows what the reading side alone costs.

Run: ``uv run python -m bench.rebuild [--users 2000 --updates 20 --runs 3]``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from psycopg.sql import SQL, Identifier

from bench._common import (
    DEFAULT_SERVER,
    CpuMeter,
    CpuShares,
    Table,
    count_rows,
    create_database,
    drop_database,
    fmt,
    log,
    machine_lines,
    median,
    wait_for_quiet,
)
from commands.users.accounts import UsersApplication
from commands.users.passwords import PasswordHasher
from domain.sessions import Session
from domain.users import EmailIndex, User
from infra.entrypoints.rebuild import rebuild
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap
from infra.wiring.views import VIEWS
from projections.engine import generation_schema
from projections.generations import active_generations
from streams.replay import BATCH_SIZE

PROJECTIONS = ("user_profiles", "admin_users", "user_access")
TARGET = 10_000.0
READ_TABLES = {
    "user_profiles": "read.user_profiles",
    "admin_users": "read.admin_users",
    "user_access": "read.access_users",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.rebuild",
        description="Projection rebuild throughput (events/s into Postgres read models).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--postgres", default=DEFAULT_SERVER, help="maintenance conninfo")
    p.add_argument("--users", type=int, default=2000, help="accounts in the log")
    p.add_argument("--updates", type=int, default=20, help="ProfileUpdated events per account")
    p.add_argument("--per-save", type=int, default=20, help="accounts per save (bulk write)")
    p.add_argument("--runs", type=int, default=3, help="rebuilds of each projection")
    p.add_argument(
        "--projections", default=",".join(PROJECTIONS), help="comma-separated projections"
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=20,
        help="before each rebuild, wait up to this long for others' CPU use to drop",
    )
    p.add_argument("--keep", action="store_true", help="keep the database")
    return p.parse_args(argv)


# --- writing the log --------------------------------------------------------------------


def _changes(n: int, k: int) -> dict[str, Any]:
    """Profile changes of every kind, each different from the one before."""
    match k % 5:
        case 0 | 1:
            return {"name": f"User {n} v{k}"}
        case 2:
            return {"phone": f"+4416329{n % 10_000:04d}{k % 100:02d}"}
        case 3:
            return {
                "addresses": [
                    {
                        "label": "home",
                        "line1": f"{k} Bench Street",
                        "line2": None,
                        "city": "Leeds",
                        "region": None,
                        "postal_code": "LS1 1AA",
                        "country": "GB",
                    }
                ]
            }
        case _:
            return {
                "notification_preferences": {
                    "order_updates_email": k % 2 == 0,
                    "order_updates_sms": k % 3 == 0,
                    "marketing_email": False,
                },
                "name": f"User {n} w{k}",
            }


def write_log(container: Container, users: int, updates: int, per_save: int) -> tuple[int, float]:
    """Returns the number of events written and the seconds it took."""
    app: UsersApplication = container.users_app
    password_hash = PasswordHasher().hash("bench password, never used to log in")
    now = datetime.now(UTC)
    tag = uuid4().hex[:6]
    start = time.perf_counter()
    written = 0
    batch: list[Any] = []
    for n in range(users):
        email = f"rebuild-{tag}-{n}@example.com"
        user = User(id=uuid4(), email=email, password_hash=password_hash, name=f"User {n}")
        token_id = uuid4()
        user.request_email_verification(token_id, now + timedelta(days=1))
        user.verify_email(token_id, now)
        for k in range(updates):
            user.update_profile(_changes(n, k))
        session = Session(
            id=uuid4(),
            user_id=user.id,
            credentials_version=user.credentials_version,
            expires_at=now + timedelta(days=30),
        )
        batch += [user, EmailIndex(email=email, user_id=user.id), session]
        if (n + 1) % per_save == 0:
            written += len(app.save(*batch))
            batch = []
            if (n + 1) % (per_save * 25) == 0:
                log(f"  {n + 1:,} users, {written:,} events")
    if batch:
        written += len(app.save(*batch))
    return written, time.perf_counter() - start


# --- measuring ------------------------------------------------------------------------------


@dataclass
class RebuildRun:
    projection: str
    seconds: float
    events: int
    rows: int
    cpu: CpuShares

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def decode_only(container: Container, events: int) -> RebuildRun:
    """Read the whole log the way ``catch_up`` does, and decode it; write nothing."""
    app = UsersApplication(container.app_env)
    meter = CpuMeter(None, [])
    start = time.perf_counter()
    position, count = 0, 0
    try:
        head = app.recorder.max_notification_id() or 0
        while position < head:
            notifications = app.recorder.select_notifications(
                start=position + 1, limit=BATCH_SIZE, stop=head
            )
            if not notifications:
                break
            for notification in notifications:
                app.mapper.to_domain_event(notification)
            count += len(notifications)
            position = notifications[-1].id
    finally:
        app.close()
    assert count == events, (count, events)
    return RebuildRun("(decode only)", time.perf_counter() - start, count, 0, meter.shares())


def rebuild_once(container: Container, name: str, events: int, label: str) -> RebuildRun:
    meter = CpuMeter(None, [])
    start = time.perf_counter()
    rebuild(container, name)
    seconds = time.perf_counter() - start
    rows = count_rows(container.conninfo, READ_TABLES[name])
    return RebuildRun(label, seconds, events, rows, meter.shares())


def same_as_previous(container: Container, name: str) -> bool:
    """Whether the active generation of ``name`` holds exactly the rows of the one
    before it (kept by ``rebuild``)."""
    view_class = next(v for v, _ in VIEWS if v.name == name)
    with psycopg.connect(container.conninfo, autocommit=True) as conn:
        active = active_generations(conn)[name]
        digests = []
        for generation in (active - 1, active):
            schema = generation_schema(name, generation)
            for table in view_class.tables:
                row = conn.execute(
                    SQL(
                        "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {0}.{1} t"
                    ).format(Identifier(schema), Identifier(table))
                ).fetchone()
                digests.append((generation, table, row[0] if row else None))
    previous = [d[1:] for d in digests if d[0] == active - 1]
    current = [d[1:] for d in digests if d[0] == active]
    return previous == current


# --- report --------------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    machine: list[str],
    events: int,
    write_seconds: float,
    runs: list[RebuildRun],
) -> str:
    out = ["# Projection rebuild throughput", "", *machine]
    out += [
        f"- log: {args.users:,} users x ({args.updates} ProfileUpdated + Registered, "
        "TokenIssued, EmailVerified, EmailIndex.Claimed, Session.Started) = "
        f"**{events:,} events**, "
        f"written in {write_seconds:.1f} s ({events / write_seconds:,.0f} events/s, "
        f"{args.per_save} users per save)",
        f"- each rebuild: `rebuild(container, name)` (new generation, replay in "
        f"batches of {BATCH_SIZE}, swap, drop old generations); {args.runs} runs each; events/s "
        "counts every event of the log (the ones a projection ignores still cost a decode)",
        "- CPU in cores (1.0 = one core): this process, and the rest of the machine "
        "(Postgres and anything else running)",
        "",
    ]
    rows = []
    names = list(dict.fromkeys(r.projection for r in runs))
    for name in names:
        mine = [r for r in runs if r.projection == name]
        best = median(r.events_per_s for r in mine)
        verdict = "-" if name.startswith("(") else ("yes" if best >= TARGET else "**no**")
        rows.append(
            [
                name,
                " / ".join(f"{r.seconds:.2f}" for r in mine),
                " / ".join(fmt(r.events_per_s, 0) for r in mine),
                f"**{fmt(best, 0)}**",
                f"{median(r.cpu.own for r in mine):.2f}",
                f"{median(r.cpu.postgres + r.cpu.other for r in mine):.2f}",
                str(mine[-1].rows) if mine[-1].rows else "-",
                verdict,
            ]
        )
    out.append(
        Table(
            [
                "projection",
                "seconds per run",
                "events/s per run",
                "median events/s",
                "CPU this process",
                "CPU rest",
                "rows",
                f">= {TARGET:,.0f}/s",
            ],
            rows,
        ).markdown()
    )
    return "\n".join(out)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    names = [n.strip() for n in args.projections.split(",") if n.strip()]
    machine = machine_lines(args.postgres)
    tmp = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    db_name, conninfo = create_database(args.postgres)
    log(f"database {db_name}")
    try:
        settings = Settings(
            database_url=conninfo,
            data_dir=tmp / "var",
            secret_key="bench-" + uuid4().hex + uuid4().hex,  # type: ignore[arg-type]
        )
        container = bootstrap(settings)
        try:
            container.migrate()
            log(f"writing {args.users:,} users x {args.updates + 5} events")
            events, write_seconds = write_log(container, args.users, args.updates, args.per_save)
            assert events == count_rows(conninfo, "users_events")
            log(f"{events:,} events written in {write_seconds:.1f}s")
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE users_events")
            runs: list[RebuildRun] = []
            for i in range(args.runs):
                if args.quiet_wait > 0:
                    wait_for_quiet(args.quiet_wait)
                run = decode_only(container, events)
                runs.append(run)
                log(f"run {i + 1}: decode only: {run.events_per_s:,.0f} events/s")
                for name in names:
                    if args.quiet_wait > 0:
                        wait_for_quiet(args.quiet_wait)
                    label = name
                    run = rebuild_once(container, name, events, label)
                    if i > 0 and not same_as_previous(container, name):
                        raise RuntimeError(f"{name}: rows differ from the previous rebuild")
                    runs.append(run)
                    log(
                        f"run {i + 1}: {label}: {run.seconds:.2f}s, {run.events_per_s:,.0f} "
                        f"events/s, {run.rows} rows (CPU: this process {run.cpu.own:.2f}, "
                        f"rest {run.cpu.postgres + run.cpu.other:.2f})"
                    )
        finally:
            container.close()
        print(report(args, machine, events, write_seconds, runs))
    finally:
        if args.keep:
            log(f"kept database {db_name}")
        else:
            drop_database(args.postgres, db_name)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

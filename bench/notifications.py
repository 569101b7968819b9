"""Notifications decided and delivered per second by one notifier, with the local
adapters (email to the mailbox table, in-app to the Postgres inbox), in the embedded
mode's own process: the projections and the delivery loops run as ``shop run`` runs
them, beside every other projection.

Each run: a fresh database; ``--users`` verified accounts written in bulk (their
verification mails are the warm-up, waited for); then, timed, ``--rounds`` rounds of
one password reset (an email) and one role change (an email and an in-app
notification) per account, written straight to the users log in saves of 100
aggregates (faster than the notifier, so the notifier's rate is what is measured).

Figures per run: notifications decided per second (until the last is recorded),
notifications delivered per second (until every delivery is final), and the delay
from decision to sent (p50/p95). The median of ``--runs`` runs is reported.

    uv run python -m bench.notifications --users 500 --rounds 4 --runs 3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from bench._common import (
    Table,
    create_database,
    discard_scratch,
    fmt,
    log,
    machine_lines,
    median,
    percentile,
)
from commands.users.passwords import PasswordHasher
from domain.users import EmailIndex, Role, User
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap

SECRET = "bench-notifications-secret-key-0123456789abcdef"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = p.parse_args()

    results = [_run(args, n + 1) for n in range(args.runs)]
    rows = [
        [
            str(n + 1),
            str(r["notifications"]),
            str(r["deliveries"]),
            fmt(r["decided_per_s"], 0),
            fmt(r["delivered_per_s"], 0),
            fmt(r["p50_ms"], 0),
            fmt(r["p95_ms"], 0),
        ]
        for n, r in enumerate(results)
    ]
    rows.append(
        [
            "median",
            "",
            "",
            *(
                fmt(median(r[k] for r in results), 0)
                for k in ("decided_per_s", "delivered_per_s", "p50_ms", "p95_ms")
            ),
        ]
    )
    print("\n".join(machine_lines(args.postgres)))
    print(
        Table(
            [
                "run",
                "notifications",
                "deliveries",
                "decided/s",
                "delivered/s",
                "decision→sent p50 ms",
                "p95 ms",
            ],
            rows,
        ).markdown()
    )


def _run(args: argparse.Namespace, run: int) -> dict[str, float]:
    name, conninfo = create_database(args.postgres, "bench_notify")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    settings = Settings(database_url=conninfo, data_dir=data_dir, secret_key=SECRET)  # type: ignore[arg-type]
    container = bootstrap(settings)
    try:
        container.migrate()
        container.start_projections()
        users = _accounts(container, args.users)
        _wait_final(container, args.users, args.users)  # the verification mails
        log(f"run {run}: {args.users} accounts, their verification mails delivered")
        base_notifications = args.users
        base_deliveries = args.users
        expected_notifications = base_notifications + 2 * args.users * args.rounds
        expected_deliveries = base_deliveries + 3 * args.users * args.rounds
        admin = uuid4()
        start = time.perf_counter()
        now = datetime.now(UTC)
        for round_ in range(args.rounds):
            for offset in range(0, len(users), 100):
                batch = users[offset : offset + 100]
                for user in batch:
                    user.request_password_reset(uuid4(), now + timedelta(hours=1))
                    if round_ % 2 == 0:
                        user.grant_role(Role.SELLER, admin)
                    else:
                        user.revoke_role(Role.SELLER, admin)
                container.users_app.save(*batch)
        written = time.perf_counter() - start
        decided = _wait_count(container, "notify.notifications", expected_notifications) - start
        delivered = _wait_final(container, expected_notifications, expected_deliveries) - start
        measured = expected_notifications - base_notifications
        p50, p95 = _delays(container)
        log(
            f"run {run}: {measured} notifications written in {written:.1f}s, decided in "
            f"{decided:.1f}s, delivered in {delivered:.1f}s"
        )
        return {
            "notifications": measured,
            "deliveries": expected_deliveries - base_deliveries,
            "decided_per_s": measured / decided,
            "delivered_per_s": measured / delivered,
            "p50_ms": p50,
            "p95_ms": p95,
        }
    finally:
        container.close()
        discard_scratch(args.postgres, name, data_dir, args.keep)


def _accounts(container: Container, count: int) -> list[User]:
    password_hash = PasswordHasher().hash("bench-password-orbit-canoe-42")
    now = datetime.now(UTC)
    users: list[User] = []
    batch: list[object] = []
    for n in range(count):
        email = f"bench-notify-{n}@example.com"
        user = User(id=uuid4(), email=email, password_hash=password_hash, name=f"Bench {n}")
        token_id = uuid4()
        user.request_email_verification(token_id, now + timedelta(days=1))
        user.verify_email(token_id, now)
        users.append(user)
        batch += [user, EmailIndex(email=email, user_id=user.id)]
        if len(batch) >= 200:
            container.users_app.save(*batch)  # type: ignore[arg-type]
            batch = []
    if batch:
        container.users_app.save(*batch)  # type: ignore[arg-type]
    return users


def _count(container: Container, sql: str) -> int:
    with container.pool.connection() as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _wait_count(container: Container, table: str, expected: int, timeout: float = 600) -> float:
    deadline = time.perf_counter() + timeout
    while (found := _count(container, f"SELECT count(*) FROM {table}")) < expected:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{table}: {found} of {expected}")
        time.sleep(0.05)
    return time.perf_counter()


def _wait_final(container: Container, notifications: int, deliveries: int) -> float:
    _wait_count(container, "notify.notifications", notifications)
    return _wait_count(
        container,
        "notify.deliveries WHERE state IN ('sent', 'failed', 'suppressed')",
        deliveries,
    )


def _delays(container: Container) -> tuple[float, float]:
    """Decision to sent, in ms, of the timed notifications (the warm-up's left out)."""
    with container.pool.connection() as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM a.finished_at - n.decided_at) * 1000 "
            "FROM notify.attempts a JOIN notify.deliveries d ON d.id = a.delivery_id "
            "JOIN notify.notifications n ON n.id = d.notification_id "
            "WHERE a.outcome = 'sent' AND n.kind <> 'verify_email'"
        ).fetchall()
    delays = [float(r[0]) for r in rows]
    return percentile(delays, 50), percentile(delays, 95)


if __name__ == "__main__":
    main()

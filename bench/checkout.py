"""Checkout, end to end, on the embedded mode: ``shop run`` (sandbox payments) under an
open-loop load of ``POST /checkout`` (fixed arrival rate; latency from each request's
intended send time, so queueing is not hidden), each order then followed until the
read model shows it confirmed (the orders view's tracked position passing the
order's ``Confirmed`` event, polled every ``--poll-ms``: polling each order over
HTTP would load the server more than the checkouts do).

Figures per rate: checkouts per second achieved, checkout call p50/p95/p99, checkout
to confirmed p50/p95/p99, errors and rejected orders; plus the event rows one
checkout writes per log and its saves there (the transactions that inserted them,
by ``xmin``: orders placed together share the saga's saves), the raw
``eventsourcing`` save rate on the same Postgres in the same run, and the CPU shares
(the load generator shares the 2 cores).

Setup outside the measurement: verified users and their carts (one line each, of one
of ``--products`` products with plenty of stock) are written straight to the event
stores, and so is one session per user, as a login writes it (``Session.Started``),
its access token signed with the server's secret: 30,000 logins over HTTP took 8
minutes of argon2 before a 5-minute run. Every user checks out once.

    uv run python -m bench.checkout --rates 10 25 50 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx
import psycopg
from eventsourcing.utils import get_topic

from bench._common import (
    CpuMeter,
    Table,
    create_database,
    database_backends,
    discard_scratch,
    fmt,
    log,
    machine_lines,
    paced,
    percentile,
)
from bench._rawhttp import RawHttp
from bench.commands import BenchUser, prepare_users, shop_server
from commands.users.passwords import PasswordHasher
from domain.access import Principal
from domain.carts import open_cart
from domain.money import Money
from domain.orders import Order
from domain.sessions import Session
from infra.entrypoints.status import every_status
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap
from projections.positions import tracked_position_async

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))
ADDRESS = {"name": "Bench", "line1": "1 Main St", "city": "Lyon", "country": "FR"}
CHECKOUT = {"shipping_address": ADDRESS, "payment_method": "pm_card_visa"}
LOGS = ("ordering_events", "payments_events", "inventory_events")
DECISIONS = {get_topic(Order.Confirmed): True, get_topic(Order.Rejected): False}
"""The topics of an order's decision: confirmed or not."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 25.0, 50.0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per rate")
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--poll-ms", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64, help="requests on the wire")
    parser.add_argument(
        "--saga-partitions",
        type=int,
        default=None,
        help="SHOP_CHECKOUT_SAGA_PARTITIONS for the server (default: its own, 4)",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="projections and the checkout saga in a process of their own "
        "(`shop projections run`), the API with SHOP_PROJECTIONS=false",
    )
    parser.add_argument(
        "--background-process",
        action="store_true",
        help="with --split: the background part (notifications, analytics, the audit "
        "chain) in a third process (`shop projections run --part background`)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    return parser.parse_args()


@dataclass
class Run:
    rate: float
    duration: float
    sent: int = 0
    checkout_ms: list[float] = field(default_factory=list)
    confirmed_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    wall: float = 0.0
    cpu: str = ""

    @property
    def achieved(self) -> float:
        return len(self.confirmed_ms) / self.wall if self.wall else 0.0


def prepare(
    settings: Settings, users: int, products: int
) -> tuple[list[BenchUser], dict[UUID, str]]:
    """The users with their carts, and an access token per user."""
    password_hash = PasswordHasher().hash(PASSWORD)
    accounts = prepare_users(settings, users, password_hash)
    container = bootstrap(settings)
    try:
        container.migrate()
        tokens = sign_in(container, accounts)
        catalog, inventory = container.catalog_commands, container.inventory_commands
        category = uuid4()
        catalog.create_category(ADMIN, category, "Bench")
        product_ids = []
        for n in range(products):
            product_id, sku = uuid4(), f"BENCH-{n:04d}"
            catalog.create_product(
                ADMIN, product_id, ADMIN.user_id, sku, f"Bench {n}", price=Money.of("9.99", "EUR")
            )
            catalog.categorise(ADMIN, product_id, [category])
            catalog.publish(ADMIN, product_id)
            inventory.receive(ADMIN, sku, 1_000_000)
            product_ids.append(product_id)
        carts = []
        for n, account in enumerate(accounts):
            cart = open_cart(account.id)
            product = catalog.get_product(product_ids[n % products])
            assert product.price is not None
            cart.add_line(product.id, product.sku, 1, product.price)
            carts.append(cart)
            if len(carts) == 100:
                container.ordering.app.save(*carts)
                carts = []
        if carts:
            container.ordering.app.save(*carts)
    finally:
        container.close()
    return accounts, tokens


def sign_in(container: Container, users: list[BenchUser]) -> dict[UUID, str]:
    """What ``UserCommands.login`` writes and answers, without its argon2 run per
    user: a session per user (credentials version 1: fresh accounts), and its access
    token."""
    now = datetime.now(UTC)
    expires_at = now + container.tokens.refresh_ttl
    tokens: dict[UUID, str] = {}
    for start in range(0, len(users), 100):
        sessions = [Session(uuid4(), user.id, 1, expires_at) for user in users[start : start + 100]]
        container.users_app.save(*sessions)
        for session in sessions:
            issued = container.tokens.issue(session.user_id, session.id, session.generation, now)
            tokens[session.user_id] = issued.access_token
    return tokens


PASSWORD = "Bench-" + secrets.token_urlsafe(16)


def raw_save_rate(settings: Settings, seconds: float = 3.0) -> float:
    """Saves per second of one new one-event aggregate, straight to the ordering store."""
    container = bootstrap(settings)
    try:
        saves, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            container.ordering.app.save(open_cart(uuid4()))
            saves += 1
        return saves / seconds
    finally:
        container.close()


def await_sessions(base: str, last_token: str, timeout: float = 300.0) -> None:
    """Until the server's access view holds the last session written (the view
    follows the users log in order, so it then holds them all)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=30) as client:
        while (
            client.get("/users/me", headers={"Authorization": f"Bearer {last_token}"}).status_code
            != 200
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the access view did not take the sessions in time")
            time.sleep(0.5)


def await_settled(settings: Settings, conninfo: str, timeout: float = 600.0) -> float:
    """Until every projection has applied every log up to its head and no delivery is
    waiting: the setup's own events (registrations that decide verification mail,
    sessions, carts) are then processed before the load, not during it."""
    started = time.monotonic()
    container = bootstrap(settings)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            while any(s.lag for s in every_status(conn, container)) or conn.execute(
                "SELECT count(*) FROM notify.deliveries"
                " WHERE state IN ('queued', 'retrying', 'sending')"
            ).fetchone() != (0,):
                if time.monotonic() - started > timeout:
                    raise TimeoutError("the projections did not take the setup in time")
                time.sleep(0.5)
    finally:
        container.close()
    return time.monotonic() - started


async def load(
    base: str,
    conninfo: str,
    run: Run,
    users: list[BenchUser],
    tokens: dict[UUID, str],
    args: argparse.Namespace,
) -> None:
    loop = asyncio.get_running_loop()
    pending: dict[UUID, float] = {}
    early: dict[UUID, tuple[float, bool]] = {}
    """Decisions seen before their checkout's answer arrived: (when, confirmed)."""
    finished = asyncio.Event()
    address = urlsplit(base)
    # The raw client: httpx costs 2.4-4.3 ms of CPU per request (bench/README.md),
    # taken from the two cores the server needs.
    async with RawHttp(
        address.hostname or "127.0.0.1", address.port or 80, args.concurrency
    ) as client:

        async def one(user: BenchUser, due: float) -> None:
            headers = {
                "Authorization": f"Bearer {tokens[user.id]}",
                "Idempotency-Key": uuid4().hex,
            }
            try:
                status, body = await client.request("POST", "/checkout", CHECKOUT, headers)
            except (OSError, asyncio.IncompleteReadError) as error:
                run.statuses[type(error).__name__] += 1
                return
            run.statuses[str(status)] += 1
            if status != 202:
                return
            run.checkout_ms.append((loop.time() - due) * 1000)
            order_id = UUID(json.loads(body)["id"])
            if order_id in early:
                decided(due, *early.pop(order_id))
            else:
                pending[order_id] = due

        def decided(due: float, at: float, confirmed: bool) -> None:
            if confirmed:
                run.confirmed_ms.append((at - due) * 1000)
            else:
                run.rejected += 1

        async def watch() -> None:
            """Follows the decisions into the read model: the orders view applies the
            ordering log in order and tracks how far it got, so an order is decided
            there once that position passes its Confirmed or Rejected event. Each poll
            reads the view's position and the decisions logged up to it since the
            last poll: a cost per decision, not per pending order (asking the view
            about the pending orders by id cost 500 index probes per poll once they
            fell behind, and took the CPU they needed)."""
            seen = 0
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                while not finished.is_set() or pending:
                    head = await tracked_position_async(conn, "orders", "ordering")
                    if head > seen:
                        rows = await (
                            await conn.execute(
                                "SELECT originator_id, topic FROM public.ordering_events "
                                "WHERE notification_id > %s AND notification_id <= %s "
                                "AND topic = ANY(%s)",
                                (seen, head, list(DECISIONS)),
                            )
                        ).fetchall()
                        seen = head
                        now = loop.time()
                        for order_id, topic in rows:
                            due = pending.pop(order_id, None)
                            if due is None:
                                early[order_id] = (now, DECISIONS[topic])
                            else:
                                decided(due, now, DECISIONS[topic])
                    await asyncio.sleep(args.poll_ms / 1000)

        total = round(run.rate * run.duration)
        run.sent = total
        watcher = asyncio.create_task(watch())

        async def checkout_of(i: int, due: float) -> None:
            await one(users[i], due)

        schedule = await paced(
            run.rate, min(total, len(users)), checkout_of, drain_timeout=max(30.0, run.duration)
        )
        finished.set()
        drained = loop.time()
        await asyncio.wait_for(watcher, timeout=max(60.0, run.duration))
        run.wall = schedule.wall + loop.time() - drained  # until the last order decided


def event_rows(conninfo: str) -> dict[str, tuple[int, int]]:
    """Per log: its event rows, and the transactions that inserted them (saves)."""
    with psycopg.connect(conninfo) as conn:
        counts = {}
        for t in LOGS:
            row = conn.execute(f"SELECT count(*), count(DISTINCT xmin::text) FROM public.{t}")
            rows, saves = row.fetchone()  # type: ignore[misc]
            counts[t] = (int(rows), int(saves))
        return counts


def main() -> None:
    args = parse_args()
    machine = machine_lines(args.postgres)
    tmp = Path(tempfile.mkdtemp(prefix="bench-checkout-"))
    secret = secrets.token_urlsafe(36)
    db_name, conninfo = create_database(args.postgres)
    needed = sum(round(rate * args.duration) for rate in args.rates)
    log(f"database {db_name}; {needed} users with carts")
    try:
        # Tokens signed before the server starts must outlive a 5-minute run.
        settings = Settings(
            database_url=conninfo,
            data_dir=tmp / "var",
            secret_key=secret,  # type: ignore[arg-type]
            access_token_minutes=60,
        )
        users, tokens = prepare(settings, needed, args.products)
        raw = raw_save_rate(settings)
        log(f"raw eventsourcing saves: {raw:.0f}/s")
        runs: list[Run] = []
        per_checkout: dict[str, tuple[float, float]] = {}
        if args.saga_partitions is not None:  # shop_server passes the environment on
            os.environ["SHOP_CHECKOUT_SAGA_PARTITIONS"] = str(args.saga_partitions)
        with shop_server(
            conninfo,
            tmp / "var",
            secret,
            tmp,
            split=args.split,
            background_process=args.background_process,
        ) as server:
            await_sessions(server.base, tokens[users[-1].id])
            log(f"{len(tokens)} sessions in the access view")
            log(f"projections settled after {await_settled(settings, conninfo):.0f} s more")
            offset = 0
            for rate in args.rates:
                run = Run(rate, args.duration)
                before = event_rows(conninfo)
                with psycopg.connect(conninfo) as conn:
                    meter = CpuMeter(server.pid, database_backends(conn), server.projections_pid)
                background = CpuMeter(server.background_pid, [])
                batch = users[offset : offset + round(rate * args.duration)]
                offset += len(batch)
                asyncio.run(load(server.base, conninfo, run, batch, tokens, args))
                shares = meter.shares()
                server_cores = f"{shares.server:.2f}"
                if args.split:
                    server_cores += f" + projections {shares.extra:.2f}"
                if server.background_pid:
                    server_cores += f" + background {background.shares().server:.2f}"
                run.cpu = (
                    f"load {shares.own:.2f} / server {server_cores} / "
                    f"postgres {shares.postgres:.2f} / other {shares.other:.2f}"
                )
                after = event_rows(conninfo)
                done = max(1, len(run.confirmed_ms) + run.rejected)
                per_checkout = {
                    t: (
                        (after[t][0] - before[t][0]) / done,
                        (after[t][1] - before[t][1]) / done,
                    )
                    for t in LOGS
                }
                runs.append(run)
                log(
                    f"{rate}/s: {run.achieved:.1f} confirmed/s, checkout p95 "
                    f"{percentile(run.checkout_ms, 95):.0f} ms, confirmed p95 "
                    f"{percentile(run.confirmed_ms, 95):.0f} ms, {dict(run.statuses)}"
                )
        table = Table(
            [
                "rate/s",
                "confirmed/s",
                "checkout p50/p95/p99 ms",
                "to confirmed p50/p95/p99 ms",
                "answers",
                "rejected",
                "CPU cores (load/server/postgres/other)",
            ],
            [
                [
                    fmt(r.rate, 0),
                    fmt(r.achieved),
                    "/".join(fmt(percentile(r.checkout_ms, q), 0) for q in (50, 95, 99)),
                    "/".join(fmt(percentile(r.confirmed_ms, q), 0) for q in (50, 95, 99)),
                    ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items())),
                    str(r.rejected),
                    r.cpu,
                ]
                for r in runs
            ],
        )
        print("\n".join(machine))
        print(f"- raw eventsourcing saves (one-event aggregate, ordering store): {raw:.0f}/s")
        print(
            "- event rows / saves per checkout (last run): "
            + ", ".join(
                f"{t} {rows:.2f} / {saves:.2f}" for t, (rows, saves) in per_checkout.items()
            )
        )
        print()
        print(table.markdown())
    finally:
        discard_scratch(args.postgres, db_name, tmp, args.keep)


if __name__ == "__main__":
    main()

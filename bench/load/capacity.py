"""The capacity model (issue 18 item 4): the CPU each kind of request costs, measured
one kind at a time against the same server the load runs against, times the mix's
share of each kind, predicts the request rate one box sustains.

    uv run python -m bench.load.capacity --rate 200 --orders-per-minute 300 --products 20000

Per kind, ``--seconds`` of that kind alone at ``--kind-rate`` requests/s (open
loop, from the shoppers' own step code, so each kind is the request the load run
sends), then a wait until the projections have applied what it wrote (a
checkout's saga, views and notifications are part of its cost). The CPU of the
server (with its workers), the projections process and the database's backends over
that span, divided by the requests answered, is the kind's cost; the generator's
own CPU per request is measured beside it. What the processes use with no request at
all (followers polling, the supervisors, ``--idle-seconds`` measured first) is taken
off each kind and charged to the box once. ``checkout`` is measured as a cart line
and a checkout together, and the cart line's cost taken off.

The prediction: mean CPU per request of the mix (the shares from 20,000 sampled
journeys of the plan's mix, the same ``plan`` as ``bench.load.run``) and the rate at
which the box's cores, less the idle baseline, would be ``--utilisation`` busy, with
and without the generator's share. Takes the server options of ``bench.load.run`` (``--split``,
``--workers``, ``--database``/``--no-seed``, ...)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bench._common import (
    CpuMeter,
    CpuShares,
    database_backends,
    log,
    machine_lines,
    percentile,
)
from bench._rawhttp import RawHttp
from bench.checkout import await_settled
from bench.commands import Server
from bench.load import prepare, run
from bench.load.mix import Mix, journey, plan
from bench.load.shoppers import Shoppers, Visit, WorkerPlan, customer
from bench.load.stats import Samples
from infra.settings import Settings

KINDS = ("listing", "search", "product", "cart", "orders", "cart_add", "checkout", "login")
"""Measured; ``stream`` (a ticket and an idle stream) is left out of the model: it
holds memory, and its notifications are paid by the checkout that causes them."""
JOURNEYS = 20_000


@dataclass(frozen=True)
class KindCost:
    kind: str
    requests: int
    errors: int
    server_ms: float
    projections_ms: float
    postgres_ms: float
    generator_ms: float
    p50_ms: float
    p95_ms: float

    @property
    def system_ms(self) -> float:
        """What the shop spends on one request, in all its processes."""
        return self.server_ms + self.projections_ms + self.postgres_ms


def request_shares(mix: Mix, journeys: int = JOURNEYS, seed: int = 7) -> dict[str, float]:
    """Of the mix's requests, the share of each measured kind (sampled journeys; the
    streams' two requests left out, as in ``KINDS``)."""
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    for _ in range(journeys):
        _, steps = journey(rng, mix)
        counts.update(step.kind for step in steps if step.kind in KINDS)
    total = sum(counts.values())
    return {kind: counts[kind] / total for kind in KINDS if counts[kind]}


def minus(pair: KindCost, part: KindCost, kind: str) -> KindCost:
    """A pair's cost less one of its two requests (checkout = cart line + checkout)."""
    return KindCost(
        kind,
        pair.requests,
        pair.errors,
        2 * pair.server_ms - part.server_ms,
        2 * pair.projections_ms - part.projections_ms,
        2 * pair.postgres_ms - part.postgres_ms,
        2 * pair.generator_ms - part.generator_ms,
        pair.p50_ms,
        pair.p95_ms,
    )


@dataclass(frozen=True)
class Prediction:
    mean_system_ms: float
    mean_generator_ms: float
    idle_cores: float
    cores: int
    utilisation: float
    rate: float
    """Requests/s at which the shop's processes keep ``utilisation`` of the cores busy."""
    rate_beside_generator: float
    """The same with the generator on the same cores (as in ``bench.load.run``)."""


def predict(
    costs: dict[str, KindCost],
    shares: dict[str, float],
    cores: int,
    utilisation: float,
    idle_cores: float = 0.0,
) -> Prediction:
    system = sum(share * costs[kind].system_ms for kind, share in shares.items())
    generator = sum(share * costs[kind].generator_ms for kind, share in shares.items())
    budget = (cores * utilisation - idle_cores) * 1000  # CPU ms per second
    return Prediction(
        system,
        generator,
        idle_cores,
        cores,
        utilisation,
        budget / system,
        budget / (system + generator),
    )


# --- measuring one kind ------------------------------------------------------------------


async def _drive(
    shoppers: Shoppers, kind: str, visits: list[Visit], host: str, port: int, rate: float, s: float
) -> None:
    """``kind`` at ``rate``/s for ``s`` seconds, open loop, one visit per request in
    turn, each visit on a keep-alive connection of its own."""
    rng = random.Random(zlib.crc32(kind.encode()))
    clients = [RawHttp(host, port, 1) for _ in visits]
    start = time.monotonic() + 0.2
    for client in clients:
        await client.__aenter__()
    try:

        async def one(i: int) -> None:
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            n = i % len(visits)
            if kind == "checkout":  # a cart line first: a checkout needs a cart
                await shoppers.step("cart_add", clients[n], rng, visits[n], due)
                due = time.monotonic()
            await shoppers.step(kind, clients[n], rng, visits[n], due)

        # A visit's requests never overlap: its connection carries one at a time.
        lanes = [
            asyncio.create_task(_lane(one, range(n, int(rate * s), len(visits))))
            for n in range(len(visits))
        ]
        await asyncio.gather(*lanes)
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)


async def _lane(one: Callable[[int], Awaitable[None]], indexes: range) -> None:
    for i in indexes:
        await one(i)


def measure(
    shoppers: Shoppers,
    kind: str,
    visits: list[Visit],
    server: Server,
    conninfo: str,
    settings: Settings,
    rate: float,
    seconds: float,
    idle: CpuShares,
) -> KindCost:
    host, port = urlsplit(server.base).hostname or "127.0.0.1", urlsplit(server.base).port or 80
    shoppers.result.samples.clear()
    with psycopg.connect(conninfo) as conn:
        meter = CpuMeter(server.pid, database_backends(conn), server.projections_pid)
    started, own = time.perf_counter(), time.process_time()
    asyncio.run(_drive(shoppers, kind, visits, host, port, rate, seconds))
    generator_s = time.process_time() - own  # before the wait: it bootstraps a container
    await_settled(settings, conninfo)
    shares = meter.shares()
    span = time.perf_counter() - started
    samples = shoppers.result.samples.get(kind, Samples())
    answered = max(1, len(samples) - samples.errors)
    per = span * 1000 / answered
    ordered = sorted(samples.ms)
    return KindCost(
        kind,
        len(samples),
        samples.errors,
        max(0.0, shares.server - idle.server) * per,
        max(0.0, shares.extra - idle.extra) * per,
        max(0.0, shares.postgres - idle.postgres) * per,
        generator_s * 1000 / answered,
        percentile(ordered, 50),
        percentile(ordered, 95),
    )


def idle_cpu(server: Server, conninfo: str, seconds: float) -> CpuShares:
    """What the shop's processes use with no request coming (cores)."""
    with psycopg.connect(conninfo) as conn:
        meter = CpuMeter(server.pid, database_backends(conn), server.projections_pid)
    time.sleep(seconds)
    return meter.shares()


# --- the run ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, argparse.Namespace]:
    p = argparse.ArgumentParser(
        prog="python -m bench.load.capacity",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--kind-rate", type=float, default=20.0, help="requests/s of each kind")
    p.add_argument("--login-rate", type=float, default=5.0, help="logins/s (argon2)")
    p.add_argument("--seconds", type=float, default=30.0, help="per kind")
    p.add_argument("--visits", type=int, default=16, help="connections per kind")
    p.add_argument("--idle-seconds", type=float, default=20.0, help="the idle baseline")
    p.add_argument("--utilisation", type=float, default=0.85)
    p.add_argument("--json", type=Path, default=None, help="write the figures here too")
    own, rest = p.parse_known_args(argv)
    return own, run.parse_args(rest)


def main(argv: list[str] | None = None) -> None:
    own, args = parse_args(argv)
    machine = machine_lines(args.postgres)
    chosen = plan(
        Mix.load(args.mix),
        rate=args.rate,
        users=args.users,
        orders_per_minute=args.orders_per_minute,
    )
    shares = request_shares(chosen.mix)
    tmp = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    with run.target(args, tmp) as (base, conninfo, secret, password, server, _):
        assert server is not None, "the model measures a server it started (no --server)"
        shop = prepare.ready_shop(args, base, conninfo, secret, tmp)
        settings, tokens, accounts = shop.settings, shop.tokens, shop.accounts
        await_settled(settings, conninfo)
        host = urlsplit(base).hostname or "127.0.0.1"
        worker = WorkerPlan(
            0, host, urlsplit(base).port or 80, chosen.mix, 0.0, True, args.seed,
            shop.catalog, tokens, accounts, password, background=False,
        )  # fmt: skip
        shoppers = Shoppers(worker)
        idle = idle_cpu(server, conninfo, own.idle_seconds)
        idle_cores = idle.server + idle.extra + idle.postgres
        log(f"idle: {idle_cores:.2f} cores")
        costs: dict[str, KindCost] = {}
        used = 0
        for kind in KINDS:
            # A cart holds at most MAX_LINES lines (a shopper's adds a few): cart lines
            # go to a customer each ten, so no cart fills up.
            n = max(own.visits, int(own.kind_rate * own.seconds) // 10)
            n = n if kind == "cart_add" else own.visits
            if kind == "login":
                visits = [Visit(None, a, []) for a in accounts[:n]]
            else:  # each kind its own customers: a checkout empties the cart it needs
                visits = [
                    Visit(tokens[k], "", shoppers.cart_products(customer(k)))
                    for k in range(used, used + n)
                ]
                used += n
            rate = own.login_rate if kind == "login" else own.kind_rate
            log(f"{kind}: {rate:g}/s for {own.seconds:g} s")
            costs[kind] = measure(
                shoppers, kind, visits, server, conninfo, settings, rate, own.seconds, idle
            )
        costs["checkout"] = minus(costs["checkout"], costs["cart_add"], "checkout")
    prediction = predict(costs, shares, os.cpu_count() or 1, own.utilisation, idle_cores)
    report = render(machine, costs, shares, prediction, chosen.requests_per_s)
    print(report)
    if own.json is not None:
        own.json.write_text(
            json.dumps(
                {
                    "costs": {k: asdict(c) for k, c in costs.items()},
                    "shares": shares,
                    "prediction": asdict(prediction),
                },
                indent=2,
            )
        )


def render(
    machine: list[str],
    costs: dict[str, KindCost],
    shares: dict[str, float],
    prediction: Prediction,
    planned_rate: float,
) -> str:
    lines = [*machine, ""]
    lines.append(
        "| kind | share of requests | requests (errors) | server / projections / postgres "
        "ms CPU | system ms | generator ms | p50 / p95 ms |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for kind, c in costs.items():
        lines.append(
            f"| {kind} | {shares.get(kind, 0):.1%} | {c.requests} ({c.errors}) | "
            f"{c.server_ms:.2f} / {c.projections_ms:.2f} / {c.postgres_ms:.2f} | "
            f"{c.system_ms:.2f} | {c.generator_ms:.2f} | {c.p50_ms:.0f} / {c.p95_ms:.0f} |"
        )
    p = prediction
    lines += [
        "",
        f"- mean CPU per request of the mix: {p.mean_system_ms:.2f} ms in the shop, "
        f"{p.mean_generator_ms:.2f} ms in the generator",
        f"- idle (no requests): {p.idle_cores:.2f} cores, taken off each kind above",
        f"- predicted: {p.rate:.0f} requests/s at {p.utilisation:.0%} of {p.cores} cores "
        f"({p.rate_beside_generator:.0f}/s with the generator on the same cores); "
        f"the plan asked for {planned_rate:.0f}/s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

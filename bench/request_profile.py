"""Where a request's CPU goes, in-process: the shop app (as ``shop run`` builds it)
called directly as an ASGI app, no sockets but Redis's and Postgres's, for a cached
product detail (``GET /products/{id}``, anonymous, a Redis hit) or an authenticated
``PATCH /users/me``. Prints the CPU per request (``time.process_time``, so the
threadpool's threads count) and, with ``--profile``, a cProfile of the event loop's
thread sorted by cumulative time (the threadpool's threads are not in it: use
``py-spy record`` on this script for those).

Run: ``uv run python -m bench.request_profile product|patch [--calls 3000] [--profile]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import secrets
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import redis
import uvloop

from bench._common import DEFAULT_SERVER, create_database, discard_scratch, log, median
from commands.users.passwords import PasswordHasher
from infra.entrypoints.http import create_app
from infra.settings import Settings
from infra.wiring.process import bootstrap


class Asgi:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.statuses: Counter[int] = Counter()

    async def call(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
    ) -> bytes:
        sent = False
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        all_headers = [(b"host", b"bench"), *headers]
        if body:
            all_headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": all_headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        await self.app(scope, receive, send)
        return b"".join(chunks)


async def _measure(call: Any, calls: int, rounds: int, profile: bool) -> list[float]:
    for i in range(min(calls, 300)):
        await call(i)
    costs = []
    for _ in range(rounds):
        started = time.process_time()
        for i in range(calls):
            await call(i)
        costs.append((time.process_time() - started) / calls * 1e6)
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(calls):
            await call(i)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(60)
        print(out.getvalue())
    return costs


async def product(settings: Settings, args: argparse.Namespace) -> list[float]:
    from bench.product_detail import write_catalog

    ids = write_catalog(settings, args.products)
    container = bootstrap(settings)
    app = create_app(container, run_projections=True)
    async with app.router.lifespan_context(app):
        client = redis.Redis.from_url(settings.redis_url or "")
        state_key = f"{settings.product_cache_prefix}product:state"
        deadline = time.monotonic() + 60
        while not client.exists(state_key):
            if time.monotonic() > deadline:
                raise RuntimeError("the cache follower never vouched for the cache")
            await asyncio.sleep(0.1)
        client.close()
        asgi = Asgi(app)
        paths = [f"/products/{i}" for i in ids]
        for path in paths * 2:
            await asgi.call("GET", path, [])
        cache = container.product_cache
        assert cache is not None
        hits = cache.counts["hit"]

        async def one(i: int) -> None:
            await asgi.call("GET", paths[i % len(paths)], [])

        costs = await _measure(one, args.calls, args.rounds, args.profile)
        if set(asgi.statuses) != {200} or cache.counts["hit"] - hits < args.calls:
            raise RuntimeError(f"not all hits: {dict(asgi.statuses)} {dict(cache.counts)}")
    return costs


async def patch(settings: Settings, args: argparse.Namespace) -> list[float]:
    from bench.commands import prepare_users

    password = "Bench-" + secrets.token_urlsafe(16)
    users = prepare_users(settings, args.users, PasswordHasher().hash(password))
    container = bootstrap(settings)
    app = create_app(container, run_projections=not args.no_projections)
    async with app.router.lifespan_context(app):
        asgi = Asgi(app)
        tokens = []
        if args.no_projections:  # the sessions' view is filled by a projection
            await asyncio.to_thread(container.start_projections)
        for user in users:
            body = orjson.dumps({"email": user.email, "password": password})
            answer = await asgi.call("POST", "/auth/login", [], body)
            tokens.append(orjson.loads(answer)["access_token"])
        if args.no_projections:
            await asyncio.sleep(2)  # the sessions projected
            assert container.runner is not None
            await asyncio.to_thread(container.runner.stop)
        headers = [[(b"authorization", f"Bearer {t}".encode())] for t in tokens]
        serial = iter(range(10**9))

        async def one(i: int) -> None:
            body = orjson.dumps({"name": f"Bench {next(serial)}"})
            await asgi.call("PATCH", "/users/me", headers[i % len(headers)], body)

        costs = await _measure(one, args.calls, args.rounds, args.profile)
        if set(asgi.statuses) != {200}:
            raise RuntimeError(f"statuses: {dict(asgi.statuses)}")
    return costs


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.request_profile")
    p.add_argument("kind", choices=["product", "patch"])
    p.add_argument("--postgres", default=DEFAULT_SERVER)
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    p.add_argument("--products", type=int, default=200)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--profile", action="store_true")
    p.add_argument(
        "--no-projections",
        action="store_true",
        help="patch: without the projections (their CPU is not the request's)",
    )
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-request-profile-"))
    db_name, conninfo = create_database(args.postgres)
    prefix = f"bench-{uuid4().hex[:8]}:"
    try:
        settings = Settings(
            database_url=conninfo,
            data_dir=tmp / "var",
            secret_key=secrets.token_urlsafe(36),  # type: ignore[arg-type]
            redis_url=args.redis if args.kind == "product" else None,
            product_cache_prefix=prefix,
            login_attempts_per_account=10**9,
            login_attempts_per_address=10**9,
        )
        run = product if args.kind == "product" else patch
        costs = uvloop.run(run(settings, args))
        log(f"{args.kind}: CPU per request (µs) per round {[round(c) for c in costs]}")
        print(f"{args.kind}: median CPU per request {median(costs):.0f} µs")
    finally:
        client = redis.Redis.from_url(args.redis)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        discard_scratch(args.postgres, db_name, tmp, False)


if __name__ == "__main__":
    main()

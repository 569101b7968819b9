"""The virtual users of one generator process: sessions arriving at the process's
share of the rate, each with its own keep-alive connection (``RawHttp`` with one
connection: httpx costs 5-10x the CPU per request, bench/README.md) and, once
signed in, its notifications stream (``StreamClient`` of ``bench.sse_fanout``: the
ticket, then the stream on a connection of its own). Worker 0 also runs the sellers
and the admin.

Every request's latency counts from its intended send time: the previous answer of
its session plus its think time (a shopper cannot click before the page is there),
or the session's arrival for its first request. The generator's own lateness (the
send's delay past that time) is recorded beside it, as is its loop lag."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import zlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from uuid import uuid4

from bench._rawhttp import RawHttp
from bench.load.mix import Mix, journey
from bench.load.schedule import LagProbe, arrivals, open_model, sleep_until
from bench.load.stats import Samples
from bench.sse_fanout import StreamClient, raise_nofile

ADDRESS = {"name": "Load Shopper", "line1": "1 Main St", "city": "Lyon", "country": "FR"}
CHECKOUT = {"shipping_address": ADDRESS, "payment_method": "pm_card_visa"}
TIMEOUT_S = 60.0
CHECKOUT_RETRY_S = 45.0
RETRY_PAUSE_S = 1.0


def lost(answer: tuple[int, bytes] | None) -> bool:
    """An answer that says nothing about whether the checkout was made: none at all
    (connection refused or cut), a server error, a rate limit, or the same key's
    earlier attempt still claimed (``409 request-in-progress``)."""
    if answer is None:
        return True
    status, body = answer
    return status >= 500 or status == 429 or (status == 409 and b"request-in-progress" in body)


@dataclass(frozen=True)
class Product:
    id: str
    sku: str
    seller_id: str
    amount: str
    currency: str
    buyable: bool


@dataclass(frozen=True)
class Catalog:
    categories: list[str]
    products: list[Product]
    words: list[str]
    sellers: dict[str, str]
    """Seller id -> access token."""
    admin_token: str


@dataclass(frozen=True)
class WorkerPlan:
    index: int
    host: str
    port: int
    mix: Mix
    sessions_per_s: float
    poisson: bool
    seed: int
    catalog: Catalog
    tokens: list[str]
    """Access tokens of the remembered customers this worker may use: customer
    ``index + k * stride`` holds the k-th."""
    accounts: list[str]
    """Emails of the customers who log in with ``password``."""
    password: str
    background: bool
    """Run the sellers and the admin (one worker does)."""
    stride: int = 1
    """How many workers share the customers (``tokens`` is every stride-th)."""


@dataclass
class Visit:
    """One session's identity: its access token once signed in, the account it logs
    in with otherwise, and the products its cart may hold."""

    token: str | None
    email: str
    products: list[Product]


@dataclass
class WorkerResult:
    index: int
    samples: dict[str, Samples] = field(default_factory=dict)
    lag_ms: list[float] = field(default_factory=list)
    session_late_ms: list[float] = field(default_factory=list)
    sessions: int = 0
    peak_sessions: int = 0
    streams_opened: int = 0
    streams_lost: int = 0
    """Streams closed by the server before their session ended."""
    notified: int = 0
    """Streams that received at least one notification."""
    reconnects: int = 0
    """Steps that found their kept-alive connection closed by the server (idle past
    uvicorn's keep-alive timeout, 5 s by default) and sent on a new one."""
    examples: dict[str, str] = field(default_factory=dict)
    """The first unexpected answer of each kind and status (its body's start)."""
    checkouts: int = 0
    """Checkouts attempted (each with a key of its own; its retries not counted)."""
    accepted: list[str] = field(default_factory=list)
    """The order id of every checkout answered 202."""
    checkout_retries: int = 0
    """Retries with the same key after a lost answer."""
    checkouts_abandoned: int = 0
    """Shoppers whose checkout never got a 202 (given up after the retries, or
    refused: prices changed twice, an empty cart, ...)."""


def customer(n: int) -> str:
    """A remembered customer's name for ``cart_products``: its number, not its token
    (tokens are signed anew each run; a kept database keeps the carts)."""
    return f"customer-{n}"


class Shoppers:
    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.result = WorkerResult(plan.index)
        self.active = 0
        self.end = float("inf")
        """No step starts at or after this (monotonic s): the sessions then leave."""
        buyable = [p for p in plan.catalog.products if p.buyable] or plan.catalog.products
        self.buyable: dict[str, list[Product]] = {}
        for product in buyable:
            self.buyable.setdefault(product.currency, []).append(product)
        self.currencies = sorted(self.buyable)

    def cart_products(self, who: str) -> list[Product]:
        """What ``who`` may put in a cart: a cart holds one currency, and a signed-in
        customer's cart outlives the visit, so each customer buys in one currency."""
        return self.buyable[self.currencies[zlib.crc32(who.encode()) % len(self.currencies)]]

    def samples(self, kind: str) -> Samples:
        return self.result.samples.setdefault(kind, Samples())

    async def timed(
        self, kind: str, due: float, call: Awaitable[tuple[int, bytes]], ok: set[int]
    ) -> tuple[int, bytes] | None:
        """One request due at ``due`` (already awaited to it): its latency from
        ``due``, its outcome; None when it got no answer."""
        late = (time.monotonic() - due) * 1000
        try:
            status, body = await asyncio.wait_for(call, TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            now = time.monotonic()
            self.samples(kind).failed(now, (now - due) * 1000, late, type(error).__name__)
            return None
        now = time.monotonic()
        self.samples(kind).add(now, (now - due) * 1000, late, status in ok, status)
        if status not in ok:
            self.result.examples.setdefault(f"{kind} {status}", body[:300].decode(errors="replace"))
        return status, body

    # --- a shopper ------------------------------------------------------------------

    async def session(self, i: int, due: float) -> None:
        rng = random.Random(self.rng.random())
        remembered, steps = journey(rng, self.plan.mix)
        token, who = None, ""
        if remembered and self.plan.tokens:
            k = rng.randrange(len(self.plan.tokens))
            token, who = self.plan.tokens[k], customer(self.plan.index + k * self.plan.stride)
        email = rng.choice(self.plan.accounts) if self.plan.accounts else ""
        visit = Visit(token, email, self.cart_products(who or email))
        self.result.sessions += 1
        self.active += 1
        self.result.peak_sessions = max(self.result.peak_sessions, self.active)
        client = RawHttp(self.plan.host, self.plan.port, 1)
        stream: StreamClient | None = None
        try:
            async with client:
                for step in steps:
                    due += step.think_s
                    if due >= self.end:
                        break
                    await sleep_until(due)
                    if step.kind == "stream":
                        if visit.token is not None:
                            stream = await self.open_stream(visit.token, due)
                        due = time.monotonic()
                        continue
                    await self.step(step.kind, client, rng, visit, due)
                    due = time.monotonic()
        finally:
            self.active -= 1
            self.result.reconnects += client.reconnects
            if stream is not None:
                self.result.streams_lost += stream.closed
                self.result.notified += stream.received is not None
                if stream.transport is not None:
                    stream.transport.close()

    async def step(
        self, kind: str, client: RawHttp, rng: random.Random, visit: Visit, due: float
    ) -> None:
        """One step (``login`` signs the visit in)."""
        catalog = self.plan.catalog
        auth = {"Authorization": f"Bearer {visit.token}"} if visit.token else {}
        if kind == "listing":
            path = f"/products?category_id={rng.choice(catalog.categories)}&limit=24"
            await self.timed(kind, due, client.request("GET", path), {200})
        elif kind == "search":
            path = f"/search?q={rng.choice(catalog.words)}&limit=24"
            await self.timed(kind, due, client.request("GET", path), {200})
        elif kind == "product":
            product = rng.choice(catalog.products)
            await self.timed(kind, due, client.request("GET", f"/products/{product.id}"), {200})
        elif kind == "login":
            login = {"email": visit.email, "password": self.plan.password}
            answer = await self.timed(
                kind, due, client.request("POST", "/auth/login", login), {200}
            )
            if answer is not None and answer[0] == 200:
                visit.token = str(json.loads(answer[1])["access_token"])
        elif visit.token is None:  # its login failed (counted there): the step is skipped
            pass
        elif kind == "cart_add":
            line = {"product_id": rng.choice(visit.products).id, "quantity": 1}
            call = client.request("POST", "/cart/lines", line, auth)
            await self.timed(kind, due, call, {200, 201})
        elif kind == "cart":
            await self.timed(kind, due, client.request("GET", "/cart", None, auth), {200})
        elif kind == "checkout":
            await self.checkout(client, auth, due)
        elif kind == "orders":
            await self.timed(kind, due, client.request("GET", "/orders", None, auth), {200})

    async def checkout(self, client: RawHttp, auth: dict[str, str], due: float) -> None:
        """``POST /checkout``; a ``409 prices-changed`` (a seller repriced a product in
        the cart) is answered as a shopper would: checking out again at once, a new
        checkout with a new key. An answer lost (no answer, 5xx, 429, ``409
        request-in-progress``) is retried with the SAME key, as a storefront must:
        the key is what keeps the lost attempt and the retry one order."""
        for _attempt in range(2):
            key = uuid4().hex
            answer = await self.checkout_once(client, auth, key, due)
            self.result.checkouts += 1
            if answer is not None and answer[0] == 202:
                self.result.accepted.append(str(json.loads(answer[1])["id"]))
                return
            if answer is None or answer[0] != 409:
                break
            due = time.monotonic()
        self.result.checkouts_abandoned += 1

    async def checkout_once(
        self, client: RawHttp, auth: dict[str, str], key: str, due: float
    ) -> tuple[int, bytes] | None:
        """One checkout's attempts with one key, until an answer that is not a lost
        one or ``CHECKOUT_RETRY_S`` have passed (longer than the 30 s after which
        a claim of a crashed attempt may be taken over)."""
        headers = {**auth, "Idempotency-Key": key}
        deadline = time.monotonic() + CHECKOUT_RETRY_S
        while True:
            call = client.request("POST", "/checkout", CHECKOUT, headers)
            answer = await self.timed("checkout", due, call, {202})
            if not lost(answer) or time.monotonic() >= deadline:
                return answer
            self.result.checkout_retries += 1
            await asyncio.sleep(RETRY_PAUSE_S)
            due = time.monotonic()

    async def open_stream(self, token: str, due: float) -> StreamClient | None:
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[bool] = loop.create_future()
        host = f"{self.plan.host}:{self.plan.port}"
        stream = StreamClient(host, token, opened)
        late = (time.monotonic() - due) * 1000
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: stream, self.plan.host, self.plan.port), TIMEOUT_S
            )
            await asyncio.wait_for(opened, TIMEOUT_S)
        except (OSError, RuntimeError, TimeoutError, ConnectionError) as error:
            now = time.monotonic()
            why = type(error).__name__
            self.samples("stream").failed(now, (now - due) * 1000, late, why)
            if stream.transport is not None:
                stream.transport.close()
            return None
        now = time.monotonic()
        self.samples("stream").add(now, (now - due) * 1000, late, True, 200)
        self.result.streams_opened += 1
        return stream

    # --- sellers and the admin ------------------------------------------------------------

    async def sellers(self, start: float) -> None:
        """Price changes and stock receipts, alternately, at the mix's rate (open)."""
        rate = self.plan.mix.seller_updates_per_min / 60
        rng = random.Random(self.plan.seed + 1)
        owned = [p for p in self.plan.catalog.products if p.seller_id in self.plan.catalog.sellers]
        if rate <= 0 or not owned:
            return
        client = RawHttp(self.plan.host, self.plan.port, 4)

        async def update(i: int, due: float) -> None:
            product = rng.choice(owned)
            auth = {"Authorization": f"Bearer {self.plan.catalog.sellers[product.seller_id]}"}
            if i % 2 == 0:
                cents = int(float(product.amount) * 100 * rng.uniform(0.95, 1.05))
                body: Any = {"amount": f"{max(cents, 1) / 100:.2f}", "currency": product.currency}
                call = client.request("PUT", f"/products/{product.id}/price", body, auth)
                await self.timed("price", due, call, {200})
            else:
                call = client.request(
                    "POST", f"/inventory/{product.sku}/receipts", {"quantity": 50}, auth
                )
                await self.timed("stock", due, call, {200, 201})

        async with client:
            offsets = arrivals(rate, self.end - start, rng, poisson=False)
            await open_model(offsets, start, update)

    async def admin(self, start: float) -> None:
        """Every ``ship_every_s``: the confirmed orders (a page of 100), each shipped."""
        every = self.plan.mix.ship_every_s
        if every <= 0:
            return
        auth = {"Authorization": f"Bearer {self.plan.catalog.admin_token}"}
        client = RawHttp(self.plan.host, self.plan.port, 2)
        async with client:
            due = start + every
            while due < self.end:
                await sleep_until(due)
                path = "/admin/orders?status=confirmed&limit=100"
                answer = await self.timed(
                    "admin_orders", due, client.request("GET", path, None, auth), {200}
                )
                if answer is not None and answer[0] == 200:
                    for order in json.loads(answer[1])["items"]:
                        body = {"carrier": "UPS", "tracking_number": uuid4().hex[:18].upper()}
                        path = f"/admin/orders/{order['order_id']}/ship"
                        await self.timed(
                            "ship",
                            time.monotonic(),
                            client.request("POST", path, body, auth),
                            {200, 202},
                        )
                due += every

    async def run(self, start: float, end: float) -> WorkerResult:
        """Sessions arriving from ``start`` until ``end``; none steps on after it."""
        self.end = end
        probe = LagProbe()
        probe.start()
        rng = random.Random(self.plan.seed + 2)
        offsets = arrivals(self.plan.sessions_per_s, end - start, rng, self.plan.poisson)
        background = []
        if self.plan.background:
            background = [
                asyncio.create_task(self.sellers(start)),
                asyncio.create_task(self.admin(start)),
            ]
        self.result.session_late_ms = await open_model(offsets, start, self.session)
        await asyncio.gather(*background)
        probe.stop()
        self.result.lag_ms = probe.lags_ms
        return self.result


def worker_main(plan: WorkerPlan, pipe: Connection) -> None:
    """A generator process: says it is ready, waits for the start time, runs, sends
    its result back."""
    import uvloop

    raise_nofile()
    shoppers = Shoppers(plan)
    pipe.send("ready")
    start, end = pipe.recv()
    result = uvloop.run(shoppers.run(float(start), float(end)))
    pipe.send(result)
    with contextlib.suppress(OSError):
        pipe.close()

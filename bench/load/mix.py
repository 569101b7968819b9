"""The shoppers' mix: what a session does, with which probabilities, and the rates
that follow from the run's targets. Pure: no I/O but reading a ``--mix`` file.

The defaults and their sources are in bench/README.md ("Load model"). A session is
one visit: it browses (category listings, searches, product pages), may put
products in its cart (``add_to_cart`` of all sessions), may check out (``checkout``
of all sessions; at most the carts), may read its order history. A session that
needs an account (cart, history) either is already signed in (``remembered``) or
logs in with its password before its first personal step; a share of the other
sessions are signed in too (``signed_in_browsers``). Every signed-in session holds
the notifications stream open until it leaves.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = (
    "listing",
    "search",
    "product",
    "login",
    "stream",
    "cart_add",
    "cart",
    "checkout",
    "orders",
    "price",
    "stock",
    "admin_orders",
    "ship",
)
"""Request kinds, in report order. ``stream``: ticket + stream opened (two requests,
timed together until the stream's headers arrive)."""


@dataclass(frozen=True)
class Mix:
    add_to_cart: float = 0.09
    """Sessions that add at least one product to their cart."""
    checkout: float = 0.025
    """Sessions that check out (of all sessions, not of the carts)."""
    order_history: float = 0.05
    """Sessions that read their order history."""
    remembered: float = 0.6
    """Of the sessions needing an account: already signed in (the rest log in)."""
    signed_in_browsers: float = 0.2
    """Of the other sessions: signed in although they only browse."""
    listings: tuple[int, int] = (1, 3)
    """Category listing pages per session, uniform in [low, high]."""
    searches: tuple[int, int] = (0, 2)
    details: tuple[int, int] = (1, 5)
    """Product pages per session."""
    cart_lines: tuple[int, int] = (1, 2)
    """Products added by a session that adds any."""
    think_s: float = 10.0
    """Mean think time before each step after the first (exponential, capped at 4x)."""
    seller_updates_per_min: float = 60.0
    """Price changes and stock receipts by sellers (half each), whole run."""
    ship_every_s: float = 10.0
    """An admin lists the confirmed orders this often and ships them."""

    @classmethod
    def load(cls, path: Path | None) -> Mix:
        """The defaults, overridden by the keys of a JSON file."""
        if path is None:
            return cls()
        data: dict[str, Any] = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown mix keys: {', '.join(sorted(unknown))}")
        for key, value in data.items():
            if isinstance(value, list):
                data[key] = tuple(value)
        mix = dataclasses.replace(cls(), **data)
        mix.check()
        return mix

    def check(self) -> None:
        for name in ("add_to_cart", "checkout", "order_history", "remembered"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability")
        if self.checkout > self.add_to_cart:
            raise ValueError("checkout cannot exceed add_to_cart (one checks out a cart)")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # --- expectations -------------------------------------------------------------

    @property
    def needs_account(self) -> float:
        """P(the session needs an account): a cart or the history (independent draws)."""
        return 1 - (1 - self.add_to_cart) * (1 - self.order_history)

    @property
    def signed_in(self) -> float:
        return self.needs_account + (1 - self.needs_account) * self.signed_in_browsers

    def expected_requests(self) -> float:
        """Requests per session on average (a stream counts as its two requests)."""
        mean = _mean
        browse = mean(self.listings) + mean(self.searches) + mean(self.details)
        logins = self.needs_account * (1 - self.remembered)
        carts = self.add_to_cart * mean(self.cart_lines)
        checkout = self.checkout * 2  # GET /cart, POST /checkout
        return browse + logins + 2 * self.signed_in + carts + checkout + self.order_history

    def expected_steps(self) -> float:
        """Steps (think times) per session: a stream opens without a think time."""
        return self.expected_requests() - 2 * self.signed_in


def _mean(span: tuple[int, int]) -> float:
    return (span[0] + span[1]) / 2


@dataclass(frozen=True)
class Step:
    kind: str
    think_s: float
    """Seconds to wait after the previous answer before this step."""


def journey(rng: random.Random, mix: Mix) -> tuple[bool, list[Step]]:
    """One session: whether it starts signed in (remembered), and its steps. A
    ``stream`` step follows the sign-in (at the start, or after ``login``)."""
    carts = rng.random() < mix.add_to_cart
    # P(checkout | cart), so that checkout sessions are ``checkout`` of all sessions.
    checks_out = carts and rng.random() < mix.checkout / mix.add_to_cart
    history = rng.random() < mix.order_history
    needs = carts or history
    signed = rng.random() < (mix.remembered if needs else mix.signed_in_browsers)
    remembered = signed
    browse = (
        ["listing"] * rng.randint(*mix.listings)
        + ["search"] * rng.randint(*mix.searches)
        + ["product"] * rng.randint(*mix.details)
    )
    first = browse[:1]  # a visit lands on a listing (or a search, or a product page)
    rest = browse[1:]
    rng.shuffle(rest)
    kinds = first + rest
    personal: list[str] = []
    if carts:
        personal += ["cart_add"] * rng.randint(*mix.cart_lines)
    if checks_out:
        personal += ["cart", "checkout"]
    if history:
        personal.append("orders")
    if needs and not signed:
        personal.insert(0, "login")
        personal.insert(1, "stream")
    if carts:
        # Products go into the cart while browsing: after a random browse step.
        at = rng.randint(1, len(kinds))
        kinds = kinds[:at] + personal + kinds[at:]
    else:
        kinds += personal
    if remembered:
        kinds.insert(0, "stream")
    steps = []
    for n, kind in enumerate(kinds):
        think = 0.0 if n == 0 or kind == "stream" else think_time(rng, mix.think_s)
        steps.append(Step(kind, think))
    return remembered, steps


def think_time(rng: random.Random, mean: float) -> float:
    return min(rng.expovariate(1 / mean), 4 * mean) if mean > 0 else 0.0


# --- the rates that follow from the targets ---------------------------------------


@dataclass(frozen=True)
class Plan:
    mix: Mix
    sessions_per_s: float
    requests_per_s: float
    orders_per_min: float
    concurrent_users: float
    """Little's law: sessions/s times a session's mean length."""
    notes: list[str]


def plan(
    mix: Mix,
    *,
    rate: float,
    users: int | None,
    orders_per_minute: float | None,
) -> Plan:
    """The session arrival rate for ``rate`` requests/s; the checkout share for
    ``orders_per_minute`` (carts abandoned stay at the mix's own count, so the cart
    share rises with it); the think time for ``users`` concurrent sessions."""
    notes: list[str] = []
    abandoned = mix.add_to_cart - mix.checkout
    sessions = rate / mix.expected_requests()
    if orders_per_minute is not None:
        for _ in range(20):  # a fixed point: the checkout share changes requests/session
            checkout = min(1.0, orders_per_minute / 60 / sessions)
            mix = dataclasses.replace(
                mix, checkout=checkout, add_to_cart=min(1.0, checkout + abandoned)
            )
            sessions = rate / mix.expected_requests()
        notes.append(
            f"{orders_per_minute:g} orders/min at {rate:g} req/s: checkout in "
            f"{mix.checkout:.1%} of sessions (the mix's default: {Mix().checkout:.1%}), "
            f"carts in {mix.add_to_cart:.1%}"
        )
    if users is not None:
        # A session lasts about its steps' think times (answers are short beside them).
        think = users / sessions / max(1.0, mix.expected_steps() - 1)
        mix = dataclasses.replace(mix, think_s=think)
        notes.append(f"{users} concurrent users: mean think time {think:.1f} s")
    length = (mix.expected_steps() - 1) * mix.think_s
    return Plan(
        mix,
        sessions,
        sessions * mix.expected_requests(),
        sessions * mix.checkout * 60,
        sessions * length,
        notes,
    )

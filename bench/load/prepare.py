"""Before the load: the catalog and the accounts (``shop seed catalog``, the same
seeded catalog ``bench.catalog_scale`` measures), sessions for the remembered
customers, the sellers and the admin (``bench.checkout.sign_in``: what a login writes,
without argon2 per user), and, once the server has caught up, a sample of the
catalog to shop from (over HTTP, as a shopper sees it)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg

from bench._common import log
from bench.catalog_scale import UPSTREAM
from bench.checkout import await_sessions, sign_in
from bench.commands import REPO, BenchUser
from bench.load.shoppers import Catalog, Product
from commands.seeding.drafts import seed_id
from infra.entrypoints.status import log_head
from infra.settings import Settings
from infra.wiring.process import bootstrap
from projections.positions import tracked_position

SELLERS = 40
"""``shop seed catalog``'s default."""


def customer_email(n: int, seed: int) -> str:
    return f"customer{n}.seed{seed}@example.com"


def seed_catalog(conninfo: str, products: int, customers: int, seed: int, password: str) -> None:
    """``shop seed catalog`` as a subprocess (resumes: existing products count)."""
    shop = Path(sys.executable).parent / "shop"
    command = [
        str(shop),
        "seed",
        "catalog",
        f"--products={products}",
        f"--customers={customers}",
        f"--sellers={SELLERS}",
        f"--seed={seed}",
        f"--password={password}",
    ]
    env = {**os.environ, "SHOP_DATABASE_URL": conninfo, "SHOP_SECRET_KEY": "seed-" + "s" * 43}
    started = time.monotonic()
    subprocess.run(command, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    log(
        f"seeded {products:,} products, {customers:,} customers "
        f"in {time.monotonic() - started:.0f}s"
    )


def sessions(
    settings: Settings, seed: int, remembered: int
) -> tuple[list[str], dict[str, str], str]:
    """Access tokens: of ``remembered`` customers, of every seller (by id), of the
    admin."""
    customers = [
        BenchUser(seed_id(seed, "customer", n), customer_email(n, seed)) for n in range(remembered)
    ]
    sellers = [
        BenchUser(seed_id(seed, "seller", n), f"seller{n}.seed{seed}@example.com")
        for n in range(SELLERS)
    ]
    admin = BenchUser(seed_id(seed, "admin", 0), f"catalog-admin.seed{seed}@example.com")
    container = bootstrap(settings)
    try:
        tokens = sign_in(container, [*customers, *sellers, admin])
    finally:
        container.close()
    return (
        [tokens[c.id] for c in customers],
        {str(s.id): tokens[s.id] for s in sellers},
        tokens[admin.id],
    )


def wait_for_catalog(conninfo: str, timeout: float = 3600) -> float:
    """Until every catalog view has applied its logs up to their heads (the server
    replays them from the start on an empty database)."""
    started = time.monotonic()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for view, logs in UPSTREAM.items():
            for name in logs:
                head = log_head(conn, name)
                while tracked_position(conn, view, name) < head:
                    if time.monotonic() - started > timeout:
                        raise TimeoutError(f"{view} did not catch up with {name}")
                    time.sleep(1.0)
    return time.monotonic() - started


def _leaves(nodes: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for node in nodes:
        out += _leaves(node["children"]) if node["children"] else [node["id"]]
    return out


def sample_catalog(base: str, limit: int, sellers: dict[str, str], admin: str) -> Catalog:
    """The leaf categories, up to ``limit`` products from the listings (newest first),
    and search words from their names."""
    products: list[Product] = []
    words: set[str] = set()
    with httpx.Client(base_url=base, timeout=60) as client:
        categories = _leaves(client.get("/categories").raise_for_status().json()["items"])
        cursor: str | None = None
        while len(products) < limit:
            path = "/products?limit=100" + (f"&cursor={quote(cursor)}" if cursor else "")
            page = client.get(path).raise_for_status().json()
            for item in page["items"]:
                price = item["price"] or {"amount": "1.00", "currency": "EUR"}
                products.append(
                    Product(
                        item["id"],
                        item["sku"],
                        item["seller_id"],
                        price["amount"],
                        price["currency"],
                        item["price"] is not None and item["stock"]["available"] >= 20,
                    )
                )
                words.update(w.lower() for w in item["name"].split() if w.isalpha() and len(w) > 3)
            cursor = page["next_cursor"]
            if not cursor:
                break
    return Catalog(categories, products[:limit], sorted(words), sellers, admin)


@dataclass(frozen=True)
class Shop:
    """What the generator needs of a server that is ready: the settings it signs
    sessions with, a sample of its catalog, the remembered customers' access tokens
    and the emails of those who log in."""

    settings: Settings
    catalog: Catalog
    tokens: list[str]
    accounts: list[str]


def ready_shop(args: argparse.Namespace, base: str, conninfo: str, secret: str, tmp: Path) -> Shop:
    """Sessions written for half the customers, the sellers and the admin; then,
    once the server's catalog views have caught up, the catalog sampled."""
    settings = Settings(
        database_url=conninfo,
        data_dir=tmp / "var",
        secret_key=secret,  # type: ignore[arg-type]
        access_token_minutes=60,
    )
    customers = args.customers or 2 * args.users
    remembered = customers // 2
    tokens, sellers, admin = sessions(settings, args.seed, remembered)
    await_sessions(base, admin)
    caught = wait_for_catalog(conninfo)
    log(f"read models caught up ({caught:.0f} s more); sampling the catalog")
    catalog = sample_catalog(base, args.sample, sellers, admin)
    log(
        f"{len(catalog.products):,} products "
        f"({sum(p.buyable for p in catalog.products):,} buyable), "
        f"{len(catalog.categories)} categories, {len(catalog.words)} search words"
    )
    accounts = [customer_email(n, args.seed) for n in range(remembered, customers)]
    return Shop(settings, catalog, tokens, accounts)

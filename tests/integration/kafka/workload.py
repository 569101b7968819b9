"""Writes through the real command handlers into every bounded context's log: users,
a category tree that moves (so a read model depends on the order of one log's
events across aggregates), products, stock and reviews."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from uuid import UUID, uuid4

from domain.access import Principal
from domain.errors import DomainError
from domain.money import Money
from infra.wiring.process import Container

ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))
SELLER = Principal(uuid4(), uuid4(), frozenset({"customer", "seller"}))
PASSWORD = "lantern-mosaic-quiver-harbor-97"


@dataclass
class Workload:
    container: Container
    seed: int = 1
    categories: list[UUID] = field(default_factory=list)
    products: list[tuple[UUID, str]] = field(default_factory=list)
    users: int = 0

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def run(self, rounds: int, users_every: int = 10) -> None:
        """About 8 events per round, over the four logs."""
        for n in range(rounds):
            self.step()
            if n % users_every == 0:
                self.register()

    def step(self) -> None:
        c = self.container
        r = self.random
        if len(self.categories) < 3 or r.random() < 0.15:
            parent = r.choice(self.categories) if self.categories and r.random() < 0.7 else None
            category = uuid4()
            c.catalog_commands.create_category(
                ADMIN, category, f"Category {len(self.categories)}", parent
            )
            self.categories.append(category)
        elif r.random() < 0.1:
            moved, parent = r.sample(self.categories, 2)
            # A move under its own subtree or too deep is refused: fine, nothing written.
            with contextlib.suppress(DomainError):
                c.catalog_commands.move_category(ADMIN, moved, parent)
        product = uuid4()
        sku = f"SKU-{self.seed}-{len(self.products):05d}"
        c.catalog_commands.create_product(
            SELLER,
            product,
            SELLER.user_id,
            sku,
            f"Widget {len(self.products)}",
            attributes={"color": r.choice(["red", "blue"])},
            price=Money.of(f"{r.randint(1, 500)}.00", "EUR"),
        )
        c.catalog_commands.categorise(SELLER, product, [r.choice(self.categories)])
        c.catalog_commands.publish(SELLER, product)
        c.inventory_commands.receive(SELLER, sku, r.randint(1, 20))
        self.products.append((product, sku))
        if len(self.products) > 1:
            reviewed, _ = r.choice(self.products)
            customer = Principal(uuid4(), uuid4(), frozenset({"customer"}))
            c.review_commands.write(customer, reviewed, r.randint(1, 5), "title")
        if r.random() < 0.3:
            changed, _ = r.choice(self.products)
            c.catalog_commands.change_price(
                SELLER, changed, Money.of(f"{r.randint(1, 500)}.00", "EUR")
            )

    def register(self) -> None:
        self.users += 1
        self.container.user_commands.register(
            uuid4(), f"user{self.users}.{self.seed}@example.com", PASSWORD, f"User {self.users}"
        )

"""Product ``n`` of a seeded catalog, with its SKU claim, its stock item and its
reviews: a function of the seed and ``n`` only (``ProductDrafts.draft``), so a rerun
or a resumed run draws what the first drew. Made by the domain's own functions
(``create_product``, ``categorise``, ``publish``, ``StockItem.receive``,
``write_review``...), as the command handlers make them; ``commands.seeding.catalog``
saves them in bulk."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from commands.seeding.words import (
    ADJECTIVES,
    BRAND_ENDINGS,
    BRAND_STEMS,
    COLOURS,
    COUNTRIES,
    CURRENCIES,
    FEATURES,
    MATERIALS,
    MODELS,
    PRICE_RANGES,
    REVIEW_BODIES,
    REVIEW_TITLES,
    SELLER_REPLIES,
    SIZED_DEPARTMENTS,
)
from domain.access import Principal
from domain.catalog import Product, SkuClaim, create_product
from domain.inventory import StockItem, open_stock_item
from domain.money import Money
from domain.reviews import Review, write_review
from domain.users import Role

PUBLISHED_SHARE = 0.90
DRAFT_SHARE = 0.04
UNPUBLISHED_SHARE = 0.04  # the rest (2%) is archived
SECOND_CATEGORY_SHARE = 0.12
OUT_OF_STOCK_SHARE = 0.06
LOW_STOCK_SHARE = 0.10
REVIEWED_SHARE = 0.35
MAX_REVIEWS = 6
REPLY_SHARE = 0.05
RATING_WEIGHTS = (7, 6, 12, 30, 45)  # percent for 1..5 stars


@dataclass(frozen=True)
class Leaf:
    id: UUID
    department: str
    nouns: list[str]


@dataclass(frozen=True)
class Draft:
    product: Product
    claim: SkuClaim
    stock: StockItem
    reviews: list[Review]


def seeded_rng(seed: int, kind: str, n: int) -> random.Random:
    """The generator of one seeded thing: reproducible, not secret."""
    return random.Random(f"{seed}:{kind}:{n}")  # noqa: S311


def brands() -> list[str]:
    return [stem + ending for stem in BRAND_STEMS for ending in BRAND_ENDINGS]


def seed_id(seed: int, kind: str, n: int | str) -> UUID:
    return uuid5(NAMESPACE_URL, f"/eventshop/seed/{seed}/{kind}/{n}")


def seed_principal(seed: int, user_id: UUID, *roles: Role) -> Principal:
    return Principal(
        user_id, seed_id(seed, "session", str(user_id)), frozenset({"customer", *roles})
    )


class ProductDrafts:
    def __init__(self, seed: int, sellers: int, customers: int, leaves: list[Leaf]) -> None:
        self._seed = seed
        self._sellers = sellers
        self._customers = customers
        self._leaves = leaves
        self._brands = brands()

    def _id(self, kind: str, n: int | str) -> UUID:
        return seed_id(self._seed, kind, n)

    def _principal(self, user_id: UUID, *roles: Role) -> Principal:
        return seed_principal(self._seed, user_id, *roles)

    def _seller(self, brand_index: int) -> Principal:
        """Each brand belongs to one seller."""
        return self._principal(self._id("seller", brand_index % self._sellers), Role.SELLER)

    def _customer(self, n: int) -> Principal:
        return self._principal(self._id("customer", n))

    def draft(self, n: int) -> Draft:
        """Product ``n``: a function of the seed and ``n`` only."""
        rng = seeded_rng(self._seed, "product", n)
        leaf = rng.choice(self._leaves)
        brand_index = rng.randrange(len(self._brands))
        brand = self._brands[brand_index]
        seller = self._seller(brand_index)
        noun = rng.choice(leaf.nouns)
        adjective = rng.choice(ADJECTIVES)
        model = f" {rng.choice(MODELS)}" if rng.random() < 0.35 else ""
        name = f"{brand} {adjective} {noun}{model}"
        colour = rng.choice(COLOURS)
        material = rng.choice(MATERIALS)
        attributes = {"brand": brand, "colour": colour, "material": material}
        sizes = SIZED_DEPARTMENTS.get(leaf.department)
        if sizes is not None:
            attributes["size"] = rng.choice(sizes)
        warranty = rng.choice((1, 2, 2, 3, 5))
        if leaf.department in ("Electronics", "Home & Kitchen", "Garden & DIY"):
            attributes["warranty"] = f"{warranty} years"
        features = rng.sample(FEATURES, 2)
        description = (
            f"The {name} is a {adjective.lower()} {noun.lower()} by {brand} in {colour} "
            f"{material}. "
            + " ".join(
                f.format(warranty=warranty, country=rng.choice(COUNTRIES), brand=brand)
                for f in features
            )
        )
        product_id = self._id("product", n)
        images = [
            f"https://images.example.com/seed{self._seed}/{product_id}/{k}.jpg"
            for k in range(1, rng.randint(1, 4) + 1)
        ]
        product = create_product(
            seller,
            product_id,
            seller.user_id,
            f"S{self._seed}-{brand[:3].upper()}-{n:07d}",
            name,
            description,
            attributes,
            images,
            self._price(rng, leaf.department),
        )
        categories = [leaf.id]
        if rng.random() < SECOND_CATEGORY_SHARE:
            same = [x.id for x in self._leaves if x.department == leaf.department]
            categories.append(rng.choice(same))
        product.categorise(seller, categories)
        status = rng.random()
        reviews: list[Review] = []
        if status < PUBLISHED_SHARE:
            product.publish(seller)
            reviews = self._reviews_of(product, rng, noun, colour, material)
        elif status >= PUBLISHED_SHARE + DRAFT_SHARE:
            product.publish(seller)
            if status < PUBLISHED_SHARE + DRAFT_SHARE + UNPUBLISHED_SHARE:
                product.unpublish(seller)
            else:
                product.archive(seller)
        return Draft(
            product,
            SkuClaim(sku=product.sku, product_id=product.id),
            self._stock(product.sku, seller.user_id, rng),
            reviews,
        )

    @staticmethod
    def _price(rng: random.Random, department: str) -> Money:
        currency = rng.choices([c[0] for c in CURRENCIES], weights=[c[1] for c in CURRENCIES])[0]
        rate = next(c[2] for c in CURRENCIES if c[0] == currency)
        low, high = PRICE_RANGES[department]
        euros = math.exp(rng.uniform(math.log(low), math.log(high)))
        whole = max(1, int(euros * rate))
        cents = rng.choice(("99", "95", "49", "00"))
        return Money.of(Decimal(f"{whole}.{cents}"), currency)

    @staticmethod
    def _stock(sku: str, seller_id: UUID, rng: random.Random) -> StockItem:
        """Received stock; some SKUs low (alerting) or never received (out of stock)."""
        item = open_stock_item(sku)
        kind = rng.random()
        if kind < OUT_OF_STOCK_SHARE:
            item.set_low_stock_threshold(rng.choice((0, 5)), seller_id)
        elif kind < OUT_OF_STOCK_SHARE + LOW_STOCK_SHARE:
            item.receive(rng.randint(1, 5), seller_id)
            item.set_low_stock_threshold(10, seller_id)
        else:
            item.receive(int(math.exp(rng.uniform(math.log(10), math.log(2000)))), seller_id)
            if rng.random() < 0.4:
                item.set_low_stock_threshold(rng.choice((5, 10, 20)), seller_id)
        return item

    def _reviews_of(
        self, product: Product, rng: random.Random, noun: str, colour: str, material: str
    ) -> list[Review]:
        if rng.random() >= REVIEWED_SHARE:
            return []
        count = min(MAX_REVIEWS, 1 + int(rng.expovariate(0.6)))
        reviews = []
        for author in rng.sample(range(self._customers), count):
            rating = rng.choices(range(1, 6), weights=RATING_WEIGHTS)[0]
            body = rng.choice(REVIEW_BODIES[rating]).format(
                noun=noun.lower(), colour=colour, material=material
            )
            review = write_review(
                self._customer(author), product, rating, rng.choice(REVIEW_TITLES[rating]), body
            )
            if rng.random() < REPLY_SHARE:
                seller = self._principal(product.seller_id, Role.SELLER)
                review.reply_as_seller(seller, rng.choice(SELLER_REPLIES))
            reviews.append(review)
        return reviews

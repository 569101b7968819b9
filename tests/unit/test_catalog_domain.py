"""The catalog: products (who may change them, their fields' bounds, their
lifecycle), the category tree (cycles, archiving), and CatalogCommands against the
in-memory (POPO) store."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.catalog.products import CatalogApplication, CatalogCommands
from domain.access import Principal
from domain.catalog import (
    MAX_ATTRIBUTES,
    MAX_DESCRIPTION,
    MAX_IMAGES,
    InvalidProduct,
    NotPublishable,
    Product,
    ProductArchived,
    ProductStatus,
    SkuTaken,
    create_product,
)
from domain.categories import (
    CATEGORY_TREE_ID,
    MAX_CATEGORY_DEPTH,
    Category,
    CategoryArchived,
    CategoryCycle,
    CategoryHasChildren,
    CategoryTree,
    InvalidCategory,
    ancestry,
    archive_category,
    create_category,
    move_category,
    would_create_cycle,
)
from domain.errors import DomainError, NotPermitted, UnknownEntity
from domain.money import InvalidSku, Money

OWNER = Principal(UUID(int=1), uuid4(), frozenset({"customer", "seller"}))
OTHER_SELLER = Principal(UUID(int=2), uuid4(), frozenset({"customer", "seller"}))
ADMIN = Principal(UUID(int=3), uuid4(), frozenset({"customer", "admin"}))
CUSTOMER = Principal(UUID(int=4), uuid4(), frozenset({"customer"}))
FORMER_SELLER = Principal(OWNER.user_id, uuid4(), frozenset({"customer"}))
PRINCIPALS = {
    "owner": OWNER,
    "other-seller": OTHER_SELLER,
    "admin": ADMIN,
    "customer": CUSTOMER,
    "former-seller": FORMER_SELLER,
}
MANAGERS = {"owner", "admin"}
PRICE = Money.of("19.99", "EUR")


def replay(events: list[Any]) -> Any:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


def new_product(**fields: Any) -> Product:
    defaults: dict[str, Any] = {
        "principal": OWNER,
        "product_id": uuid4(),
        "seller_id": OWNER.user_id,
        "sku": "mug-1",
        "name": "  Blue mug ",
    }
    return create_product(**{**defaults, **fields})


# --- creating products ---------------------------------------------------------------


def test_a_new_product_is_a_validated_draft() -> None:
    product = new_product(
        description=" Holds tea.\nDishwasher safe.\t",
        attributes={" Colour ": "blue", "size": " 350 ml "},
        images=["https://img.example/mug.png", "http://cdn.example:8080/a/b.jpg?w=200"],
        price=PRICE,
    )
    assert product.status == ProductStatus.DRAFT
    assert (product.sku, product.name) == ("MUG-1", "Blue mug")
    assert product.description == "Holds tea.\nDishwasher safe."
    assert product.attributes == {"colour": "blue", "size": "350 ml"}
    assert product.price == PRICE
    assert product.category_ids == []
    (created,) = product.collect_events()
    assert created.price == {"amount": "19.99", "currency": "EUR"}  # type: ignore[attr-defined]
    assert created.by == OWNER.user_id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("principal", "seller", "allowed"),
    [
        ("owner", "owner", True),
        ("admin", "owner", True),
        ("admin", "admin", True),
        ("other-seller", "owner", False),
        ("customer", "customer", False),
        ("former-seller", "owner", False),
    ],
)
def test_who_may_create_a_product(principal: str, seller: str, allowed: bool) -> None:
    seller_id = PRINCIPALS[seller].user_id
    if allowed:
        assert new_product(principal=PRINCIPALS[principal], seller_id=seller_id).seller_id == (
            seller_id
        )
    else:
        with pytest.raises(NotPermitted):
            new_product(principal=PRINCIPALS[principal], seller_id=seller_id)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "two\nlines"},
        {"name": "nul\x00"},
        {"name": 42},
        {"description": "x" * (MAX_DESCRIPTION + 1)},
        {"description": "bell\x07"},
        {"attributes": {f"k{i}": "v" for i in range(MAX_ATTRIBUTES + 1)}},
        {"attributes": {"": "v"}},
        {"attributes": {"has.dot": "v"}},
        {"attributes": {"x" * 41: "v"}},
        {"attributes": {"colour": ""}},
        {"attributes": {"colour": "x" * 201}},
        {"attributes": {"Colour": "blue", "colour": "red"}},
        {"attributes": {"colour": 3}},
        {"attributes": ["colour"]},
        {"images": ["javascript:alert(1)"]},
        {"images": ["ftp://files.example/a.png"]},
        {"images": ["data:image/png;base64,AAAA"]},
        {"images": ["/relative/a.png"]},
        {"images": ["https://"]},
        {"images": ["https://user:secret@img.example/a.png"]},
        {"images": ["https://img.example/a b.png"]},
        {"images": ["https://img.example/" + "a" * 2048]},
        {"images": ["https://[::1/a.png"]},
        {"images": ["https://img.example/a.png"] * 2},
        {"images": [f"https://img.example/{i}.png" for i in range(MAX_IMAGES + 1)]},
        {"images": "https://img.example/a.png"},
        {"price": "19.99"},
    ],
)
def test_malformed_fields_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidProduct) as caught:
        new_product(**fields)
    assert isinstance(caught.value, ValueError) and caught.value.code == "invalid-product"


def test_a_description_of_exactly_the_limit_is_accepted() -> None:
    assert len(new_product(description="x" * MAX_DESCRIPTION).description) == MAX_DESCRIPTION


def test_a_malformed_sku_is_refused() -> None:
    with pytest.raises(InvalidSku):
        new_product(sku="no spaces please")


# --- changing products: who, and the lifecycle -------------------------------------------

OPS = ["details", "price", "categorise", "uncategorise", "publish", "unpublish", "archive"]


def apply(product: Product, op: str, principal: Principal, category: UUID) -> None:
    if op == "details":
        product.update_details(principal, name="Renamed", attributes={"colour": "red"})
    elif op == "price":
        product.change_price(principal, Money.of("5", "GBP"))
    elif op == "categorise":
        product.categorise(principal, [category])
    elif op == "uncategorise":
        product.categorise(principal, [])
    elif op == "publish":
        product.publish(principal)
    elif op == "unpublish":
        product.unpublish(principal)
    else:
        product.archive(principal)


@given(
    with_price=st.booleans(),
    steps=st.lists(
        st.tuples(st.sampled_from(OPS), st.sampled_from(sorted(PRINCIPALS))), max_size=20
    ),
)
@settings(max_examples=200, deadline=None)
def test_product_lifecycle_rules_hold_for_any_sequence(
    with_price: bool, steps: list[tuple[str, str]]
) -> None:
    product = new_product(price=PRICE if with_price else None)
    category = uuid4()
    events = list(product.collect_events())
    for op, who in steps:
        was_archived = product.is_archived
        try:
            apply(product, op, PRINCIPALS[who], category)
        except NotPermitted:
            assert who not in MANAGERS
        except ProductArchived:
            assert was_archived and op != "archive"
        except NotPublishable:
            assert op in {"publish", "uncategorise"}
        else:
            assert who in MANAGERS, "a non-manager changed a product"
            assert not was_archived or op == "archive", "an archived product changed"
        new = list(product.collect_events())
        if who not in MANAGERS or was_archived:
            assert new == []
        for e in new:
            assert e.by == PRINCIPALS[who].user_id  # type: ignore[attr-defined]
        events.extend(new)
        # The publishing invariant.
        if product.is_published:
            assert product.price is not None and product.category_ids
        assert replay(events) == product


def test_publishing_needs_a_price_and_a_category() -> None:
    product = new_product()
    with pytest.raises(NotPublishable, match="a price and a category"):
        product.publish(OWNER)
    product.change_price(OWNER, PRICE)
    with pytest.raises(NotPublishable, match="a category"):
        product.publish(OWNER)
    product.categorise(OWNER, [uuid4()])
    product.publish(OWNER)
    product.publish(OWNER)  # again: nothing new
    assert product.is_published
    with pytest.raises(NotPublishable):
        product.categorise(OWNER, [])
    product.unpublish(ADMIN)
    assert product.status == ProductStatus.UNPUBLISHED
    product.categorise(OWNER, [])
    names = [type(e).__name__ for e in product.collect_events()]
    assert names == [
        "Created",
        "PriceChanged",
        "Categorised",
        "Published",
        "Unpublished",
        "Categorised",
    ]


def test_only_effective_changes_are_recorded() -> None:
    product = new_product(attributes={"colour": "blue"}, price=PRICE)
    product.collect_events()
    product.update_details(OWNER, name=" Blue mug ", attributes={"Colour": "blue"})
    product.change_price(OWNER, Money.of("19.990", "eur"))
    product.categorise(OWNER, [])
    assert product.collect_events() == []
    product.update_details(OWNER, name="Mug", description="new")
    (updated,) = product.collect_events()
    assert updated.changes == {"name": "Mug", "description": "new"}  # type: ignore[attr-defined]


def test_category_ids_are_a_set() -> None:
    product = new_product()
    a, b = uuid4(), uuid4()
    product.categorise(OWNER, [a, b, a])
    assert product.category_ids == sorted([a, b], key=str)
    with pytest.raises(InvalidProduct):
        product.categorise(OWNER, [uuid4() for _ in range(21)])
    with pytest.raises(InvalidProduct):
        product.categorise(OWNER, ["not-a-uuid"])  # type: ignore[list-item]


def test_archived_products_refuse_every_change() -> None:
    product = new_product(price=PRICE)
    product.archive(OWNER)
    for op in OPS[:-1]:
        with pytest.raises(ProductArchived):
            apply(product, op, OWNER, uuid4())
    product.archive(ADMIN)  # archiving again is harmless
    assert [type(e).__name__ for e in product.collect_events()] == ["Created", "Archived"]


# --- the category tree ---------------------------------------------------------------


class Tree:
    """Categories in memory, with the parent lookup the domain functions take."""

    def __init__(self) -> None:
        self.nodes: dict[UUID, Category] = {}
        self.tree = CategoryTree()

    def parent_of(self, category_id: UUID) -> UUID | None:
        if category_id not in self.nodes:
            raise UnknownEntity("no such category")
        return self.nodes[category_id].parent_id

    def add(self, name: str, parent: UUID | None = None) -> UUID:
        parent_node = self.nodes[parent] if parent else None
        category = create_category(ADMIN, uuid4(), name, parent_node, self.parent_of)
        self.nodes[category.id] = category
        return category.id

    def move(self, category_id: UUID, parent: UUID | None) -> None:
        category = self.nodes[category_id]
        old = self.nodes[category.parent_id] if category.parent_id else None
        new = self.nodes[parent] if parent else None
        move_category(ADMIN, category, old, new, self.tree, self.parent_of)

    def archive(self, category_id: UUID) -> None:
        category = self.nodes[category_id]
        parent = self.nodes[category.parent_id] if category.parent_id else None
        archive_category(ADMIN, category, parent)

    def check_children(self) -> None:
        """Every parent lists exactly its active children."""
        for node in self.nodes.values():
            expected = {
                c.id for c in self.nodes.values() if c.parent_id == node.id and not c.archived
            }
            assert set(node.children) == expected
            assert len(node.children) == len(expected)


@st.composite
def forests(draw: st.DrawFn) -> dict[UUID, UUID | None]:
    """A random forest as a parent map: each node's parent is an earlier node."""
    size = draw(st.integers(1, 25))
    ids = [UUID(int=n + 1) for n in range(size)]
    parents: dict[UUID, UUID | None] = {}
    for n, node in enumerate(ids):
        parents[node] = draw(st.none() | st.sampled_from(ids[:n])) if n else None
    return parents


@given(parents=forests(), data=st.data())
@settings(max_examples=200)
def test_would_create_cycle_is_exactly_moving_under_itself_or_a_descendant(
    parents: dict[UUID, UUID | None], data: st.DataObject
) -> None:
    nodes = sorted(parents, key=lambda u: u.int)
    category = data.draw(st.sampled_from(nodes))
    new_parent = data.draw(st.none() | st.sampled_from(nodes))

    def is_descendant(node: UUID, of: UUID) -> bool:
        parent = parents[node]
        while parent is not None:
            if parent == of:
                return True
            parent = parents[parent]
        return False

    expected = new_parent is not None and (
        new_parent == category or is_descendant(new_parent, category)
    )
    assert would_create_cycle(category, new_parent, parents.__getitem__) == expected
    if not expected:  # and after the move, the tree is still a forest
        moved = {**parents, category: new_parent}
        for node in nodes:
            assert len(ancestry(node, moved.__getitem__, limit=len(nodes) + 1)) <= len(nodes)


def test_ancestry_refuses_loops_and_excessive_depth() -> None:
    a, b = UUID(int=1), UUID(int=2)
    with pytest.raises(CategoryCycle):
        ancestry(a, {a: b, b: a}.__getitem__)
    assert would_create_cycle(UUID(int=9), a, {a: b, b: a}.__getitem__)
    chain = {UUID(int=n): (UUID(int=n - 1) if n > 1 else None) for n in range(1, 30)}
    assert ancestry(UUID(int=5), chain.__getitem__) == [UUID(int=n) for n in (5, 4, 3, 2, 1)]
    with pytest.raises(InvalidCategory):
        ancestry(UUID(int=29), chain.__getitem__)


def test_categories_nest_at_most_the_maximum_depth() -> None:
    tree = Tree()
    parent = None
    for level in range(MAX_CATEGORY_DEPTH):
        parent = tree.add(f"level {level}", parent)
    with pytest.raises(InvalidCategory):
        tree.add("too deep", parent)
    top = tree.add("top")
    with pytest.raises(InvalidCategory):
        tree.move(top, parent)


def test_moving_keeps_the_tree_a_tree() -> None:
    tree = Tree()
    home = tree.add("Home")
    kitchen = tree.add("Kitchen", home)
    mugs = tree.add("Mugs", kitchen)
    garden = tree.add("Garden")
    for bad in (home, kitchen, mugs):
        with pytest.raises(CategoryCycle):
            tree.move(home, bad)
    tree.move(kitchen, garden)
    tree.move(kitchen, garden)  # already there: nothing
    assert tree.nodes[kitchen].parent_id == garden
    tree.move(mugs, None)
    assert tree.nodes[mugs].parent_id is None
    tree.check_children()
    assert tree.tree.moves == 2
    assert [type(e).__name__ for e in tree.nodes[kitchen].collect_events()] == [
        "Created",
        "ChildAttached",  # mugs, created under it
        "Moved",
        "ChildDetached",  # mugs, moved to the top
    ]


def test_archiving_needs_no_active_children_and_blocks_changes() -> None:
    tree = Tree()
    home = tree.add("Home")
    kitchen = tree.add("Kitchen", home)
    with pytest.raises(CategoryHasChildren):
        tree.archive(home)
    tree.archive(kitchen)
    tree.archive(kitchen)  # again: nothing
    tree.check_children()
    tree.archive(home)
    with pytest.raises(CategoryArchived):
        tree.add("Bathroom", home)
    with pytest.raises(CategoryArchived):
        tree.nodes[home].rename(ADMIN, "House")
    with pytest.raises(CategoryArchived):
        tree.move(home, None)
    garden = tree.add("Garden")
    with pytest.raises(CategoryArchived):
        tree.move(garden, home)


def test_only_admins_manage_categories() -> None:
    tree = Tree()
    home = tree.add("Home")
    for principal in (OWNER, CUSTOMER):
        with pytest.raises(NotPermitted):
            create_category(principal, uuid4(), "Mine", None, tree.parent_of)
        with pytest.raises(NotPermitted):
            tree.nodes[home].rename(principal, "Mine")
        with pytest.raises(NotPermitted):
            archive_category(principal, tree.nodes[home], None)


@pytest.mark.parametrize("name", ["", "  ", "x" * 101, "a\nb", None])
def test_category_names_are_bounded(name: Any) -> None:
    with pytest.raises(InvalidCategory):
        create_category(ADMIN, uuid4(), name, None, lambda _: None)


@given(
    moves=st.lists(st.tuples(st.integers(0, 7), st.none() | st.integers(0, 7)), max_size=30),
    archives=st.lists(st.integers(0, 7), max_size=5),
)
@settings(max_examples=100, deadline=None)
def test_random_moves_and_archives_never_make_a_cycle(
    moves: list[tuple[int, int | None]], archives: list[int]
) -> None:
    tree = Tree()
    ids = [tree.add(f"c{n}") for n in range(8)]
    for n in archives:
        with contextlib.suppress(DomainError):
            tree.archive(ids[n])
    for child, parent in moves:
        with contextlib.suppress(CategoryCycle, CategoryArchived, InvalidCategory):
            tree.move(ids[child], ids[parent] if parent is not None else None)
        for category_id in ids:
            ancestry(category_id, tree.parent_of, limit=len(ids) + 1)  # raises on a cycle
        tree.check_children()
    for category in tree.nodes.values():
        assert replay(list(category.collect_events())) == category


# --- the command handlers, on the in-memory store --------------------------------------


@pytest.fixture
def catalog() -> CatalogCommands:
    return CatalogCommands(CatalogApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}))


def make_product(
    catalog: CatalogCommands, sku: str = "MUG-1", principal: Principal = OWNER, **fields: Any
) -> UUID:
    product_id = uuid4()
    args: dict[str, Any] = {"seller_id": principal.user_id, "name": "Mug", "price": PRICE}
    catalog.create_product(principal, product_id, sku=sku, **{**args, **fields})
    return product_id


def test_a_seller_creates_categorises_and_publishes(catalog: CatalogCommands) -> None:
    home = catalog.create_category(ADMIN, uuid4(), "Home").id
    kitchen = catalog.create_category(ADMIN, uuid4(), "Kitchen", home).id
    product_id = uuid4()
    written = catalog.create_product(OWNER, product_id, OWNER.user_id, "mug-1", "Mug", price=PRICE)
    assert written.id == product_id
    assert written.position is not None and written.position.log == "catalog"
    catalog.categorise(OWNER, product_id, [kitchen])
    catalog.publish(OWNER, product_id)
    catalog.update_details(OWNER, product_id, description="Holds tea")
    catalog.change_price(OWNER, product_id, Money.of("21", "EUR"))
    product = catalog.get_product(product_id)
    assert product.is_published and product.category_ids == [kitchen]
    assert product.price == Money.of("21.00", "EUR")
    assert catalog.get_category(home).children == [kitchen]
    assert catalog.seller_of_sku("MUG-1") == OWNER.user_id
    assert catalog.seller_of_sku("mug-2") is None


def test_another_seller_cannot_touch_a_product(catalog: CatalogCommands) -> None:
    product_id = make_product(catalog)
    changes: list[Callable[[], object]] = [
        lambda: catalog.update_details(OTHER_SELLER, product_id, name="Mine"),
        lambda: catalog.change_price(OTHER_SELLER, product_id, PRICE),
        lambda: catalog.categorise(OTHER_SELLER, product_id, []),
        lambda: catalog.publish(OTHER_SELLER, product_id),
        lambda: catalog.unpublish(OTHER_SELLER, product_id),
        lambda: catalog.archive(OTHER_SELLER, product_id),
        lambda: catalog.create_product(
            OTHER_SELLER, product_id, OTHER_SELLER.user_id, "MUG-9", "Mine"
        ),
    ]
    for change in changes:
        with pytest.raises(NotPermitted):
            change()
    assert catalog.get_product(product_id).version == 1
    catalog.archive(ADMIN, product_id)
    assert catalog.get_product(product_id).is_archived


def test_skus_are_unique_and_creation_is_idempotent(catalog: CatalogCommands) -> None:
    product_id = make_product(catalog, "mug-1")
    again = catalog.create_product(OWNER, product_id, OWNER.user_id, "MUG-1", "Mug")
    assert again.id == product_id and again.position is None
    with pytest.raises(SkuTaken):
        make_product(catalog, "MUG-1")
    with pytest.raises(SkuTaken):
        make_product(catalog, " mug-1 ", principal=OTHER_SELLER)
    assert catalog.product_id_for_sku("mug-1") == product_id


def test_categorising_checks_the_categories(catalog: CatalogCommands) -> None:
    product_id = make_product(catalog)
    home = catalog.create_category(ADMIN, uuid4(), "Home").id
    old = catalog.create_category(ADMIN, uuid4(), "Old").id
    with pytest.raises(UnknownEntity):
        catalog.categorise(OWNER, product_id, [uuid4()])
    with pytest.raises(UnknownEntity):
        catalog.categorise(OWNER, product_id, [product_id])  # a product is no category
    catalog.categorise(OWNER, product_id, [old])
    catalog.archive_category(ADMIN, old)
    with pytest.raises(CategoryArchived):
        catalog.categorise(OWNER, make_product(catalog, "MUG-2"), [old])
    catalog.categorise(OWNER, product_id, [old, home])  # already in "old": kept
    assert set(catalog.get_product(product_id).category_ids) == {old, home}
    with pytest.raises(UnknownEntity):
        catalog.publish(OWNER, uuid4())


def test_category_handlers(catalog: CatalogCommands) -> None:
    home = catalog.create_category(ADMIN, uuid4(), "Home").id
    assert catalog.create_category(ADMIN, home, "Home").position is None  # retried
    kitchen = catalog.create_category(ADMIN, uuid4(), "Kitchen", home).id
    mugs = catalog.create_category(ADMIN, uuid4(), "Mugs", kitchen).id
    with pytest.raises(UnknownEntity):
        catalog.create_category(ADMIN, uuid4(), "Orphan", uuid4())
    with pytest.raises(CategoryCycle):
        catalog.move_category(ADMIN, home, mugs)
    catalog.move_category(ADMIN, mugs, None)
    catalog.rename_category(ADMIN, mugs, "Cups")
    with pytest.raises(CategoryHasChildren):
        catalog.archive_category(ADMIN, home)
    catalog.archive_category(ADMIN, kitchen)
    catalog.archive_category(ADMIN, home)
    assert catalog.get_category(mugs).name == "Cups"
    assert catalog.get_category(mugs).parent_id is None
    assert catalog.get_category(home).children == []
    tree: object = catalog.app.repository.get(CATEGORY_TREE_ID)
    assert isinstance(tree, CategoryTree) and tree.moves == 1
    with pytest.raises(NotPermitted):
        catalog.move_category(OWNER, mugs, None)


def test_two_concurrent_moves_cannot_both_save(catalog: CatalogCommands) -> None:
    """Each would pass the cycle check alone, together they would make a cycle: a
    and b live in different subtrees, a moves under b's child and b under a's child.
    The tree singleton makes the second save fail, and its retry sees the cycle."""
    app = catalog.app
    p = catalog.create_category(ADMIN, uuid4(), "P").id
    q = catalog.create_category(ADMIN, uuid4(), "Q").id
    a = catalog.create_category(ADMIN, uuid4(), "A", p).id
    b = catalog.create_category(ADMIN, uuid4(), "B", q).id
    a1 = catalog.create_category(ADMIN, uuid4(), "A1", a).id
    b1 = catalog.create_category(ADMIN, uuid4(), "B1", b).id
    app.save(CategoryTree())

    def decide(child: UUID, old: UUID, new: UUID) -> list[Any]:
        loaded: list[Any] = [app.repository.get(i) for i in (CATEGORY_TREE_ID, child, old, new)]
        tree, category, old_parent, new_parent = loaded
        move_category(ADMIN, category, old_parent, new_parent, tree, catalog._parent_of)
        return loaded

    first = decide(a, p, b1)
    second = decide(b, q, a1)
    app.save(*first)
    with pytest.raises(IntegrityError):
        app.save(*second)
    with pytest.raises(CategoryCycle):
        catalog.move_category(ADMIN, b, a1)


def test_catalog_aggregates_survive_snapshots() -> None:
    """Snapshots hold the aggregates' plain state (no custom transcoding needed)."""

    class Snapshotting(CatalogApplication):
        snapshotting_intervals = {Product: 2, Category: 2, CategoryTree: 2}

    app = Snapshotting(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    catalog = CatalogCommands(app)
    home = catalog.create_category(ADMIN, uuid4(), "Home").id
    kitchen = catalog.create_category(ADMIN, uuid4(), "Kitchen", home).id
    garden = catalog.create_category(ADMIN, uuid4(), "Garden").id
    catalog.move_category(ADMIN, kitchen, garden)
    catalog.move_category(ADMIN, kitchen, home)
    product_id = make_product(
        catalog, attributes={"colour": "blue"}, images=["https://i.example/a"]
    )
    catalog.categorise(OWNER, product_id, [kitchen, garden])
    catalog.publish(OWNER, product_id)
    catalog.change_price(OWNER, product_id, Money.of("3.50", "GBP"))
    for aggregate_id in (home, kitchen, garden, product_id, CATEGORY_TREE_ID):
        assert app.snapshots is not None
        assert list(app.snapshots.get(aggregate_id)), "no snapshot was taken"
        from_snapshot: object = app.repository.get(aggregate_id)
        from_events = replay(list(app.events.get(aggregate_id)))
        assert from_snapshot == from_events
    product = catalog.get_product(product_id)
    assert product.price == Money.of("3.5", "GBP") and product.is_published

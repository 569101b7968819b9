"""The category tree: categories, and the singleton that serialises moves.

A category cannot be moved under itself or any of its descendants
(``would_create_cycle``), nor under an archived category, nor below
``MAX_CATEGORY_DEPTH`` levels of ancestors. A parent lists its active children, saved
in the same transaction as the child's own event, so a category with active children
cannot be archived. Every move also records an event on the ``CategoryTree``
singleton, so moves are serialised and two concurrent moves cannot each pass the
cycle check and together make a cycle. Only admins manage categories.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.access import Principal
from domain.errors import DomainError
from domain.text import single_line
from domain.users import Role

MAX_CATEGORY_NAME = 100
MAX_CATEGORY_DEPTH = 16


class InvalidCategory(DomainError, ValueError):
    """A category name is malformed, or the tree would become too deep."""

    code = "invalid-category"


class CategoryArchived(DomainError):
    """The category is archived: it cannot change, nor take products or children."""

    code = "category-archived"


class CategoryCycle(DomainError):
    """The move would put a category under itself or one of its descendants."""

    code = "category-cycle"


class CategoryHasChildren(DomainError):
    """A category with active children cannot be archived."""

    code = "category-has-children"


def valid_category_name(name: object) -> str:
    return single_line("a category name", name, MAX_CATEGORY_NAME, InvalidCategory)


def require_can_manage_categories(principal: Principal) -> None:
    principal.require_role(Role.ADMIN)


ParentLookup = Callable[[UUID], UUID | None]


class Category(Aggregate):
    """A node of the category tree. Created through ``create_category``."""

    class Created(Aggregate.Created):
        name: str
        parent_id: UUID | None
        by: UUID

    class Renamed(Aggregate.Event):
        name: str
        by: UUID

    class Moved(Aggregate.Event):
        parent_id: UUID | None
        by: UUID

    class Archived(Aggregate.Event):
        by: UUID

    class ChildAttached(Aggregate.Event):
        child_id: UUID

    class ChildDetached(Aggregate.Event):
        child_id: UUID

    @event(Created)
    def __init__(self, id: UUID, name: str, parent_id: UUID | None, by: UUID) -> None:
        self.name = name
        self.parent_id = parent_id
        self.archived = False
        self.children: list[UUID] = []  # active children, in the order attached

    def _require_active(self) -> None:
        if self.archived:
            raise CategoryArchived(f"category {self.name!r} is archived")

    def rename(self, principal: Principal, name: str) -> None:
        require_can_manage_categories(principal)
        self._require_active()
        name = valid_category_name(name)
        if name != self.name:
            self._renamed(name=name, by=principal.user_id)

    @event(Renamed)
    def _renamed(self, name: str, by: UUID) -> None:
        self.name = name

    @event(Moved)
    def _moved(self, parent_id: UUID | None, by: UUID) -> None:
        self.parent_id = parent_id

    @event(Archived)
    def _archived(self, by: UUID) -> None:
        self.archived = True

    def _attach(self, child_id: UUID) -> None:
        self._require_active()
        if child_id not in self.children:
            self._child_attached(child_id=child_id)

    @event(ChildAttached)
    def _child_attached(self, child_id: UUID) -> None:
        self.children = [*self.children, child_id]

    def _detach(self, child_id: UUID) -> None:
        if child_id in self.children:
            self._child_detached(child_id=child_id)

    @event(ChildDetached)
    def _child_detached(self, child_id: UUID) -> None:
        self.children = [c for c in self.children if c != child_id]


class CategoryTree(Aggregate):
    """A singleton whose version changes with every move, so that moves (rare, admin
    only) are serialised by optimistic concurrency: see the module docstring."""

    @staticmethod
    def create_id() -> UUID:
        return CATEGORY_TREE_ID

    class Planted(Aggregate.Created):
        pass

    class Restructured(Aggregate.Event):
        category_id: UUID
        parent_id: UUID | None

    @event(Planted)
    def __init__(self) -> None:
        self.moves = 0

    @event(Restructured)
    def _restructured(self, category_id: UUID, parent_id: UUID | None) -> None:
        self.moves += 1


CATEGORY_TREE_ID = uuid5(NAMESPACE_URL, "/eventshop/catalog/category-tree")


def ancestry(start: UUID, parent_of: ParentLookup, limit: int = MAX_CATEGORY_DEPTH) -> list[UUID]:
    """``start`` and its ancestors, nearest first. Raises ``CategoryCycle`` if the
    chain loops (corrupt data) and ``InvalidCategory`` if it is longer than
    ``limit``."""
    chain = [start]
    seen = {start}
    parent = parent_of(start)
    while parent is not None:
        if parent in seen:
            raise CategoryCycle("the category tree contains a cycle")
        if len(chain) >= limit:
            raise InvalidCategory(f"categories nest at most {limit} levels deep")
        chain.append(parent)
        seen.add(parent)
        parent = parent_of(parent)
    return chain


def would_create_cycle(
    category_id: UUID, new_parent_id: UUID | None, parent_of: ParentLookup
) -> bool:
    """Whether putting ``category_id`` under ``new_parent_id`` would make it its own
    ancestor: true when the new parent is the category or one of its descendants."""
    if new_parent_id is None:
        return False
    seen: set[UUID] = set()
    node: UUID | None = new_parent_id
    while node is not None:
        if node == category_id or node in seen:
            return True
        seen.add(node)
        node = parent_of(node)
    return False


def create_category(
    principal: Principal,
    category_id: UUID,
    name: str,
    parent: Category | None,
    parent_of: ParentLookup,
) -> Category:
    """A new category, attached to its parent (save both together)."""
    require_can_manage_categories(principal)
    name = valid_category_name(name)
    if parent is not None:
        parent._require_active()
        ancestry(parent.id, parent_of, MAX_CATEGORY_DEPTH - 1)
    category = Category(
        id=category_id,
        name=name,
        parent_id=parent.id if parent is not None else None,
        by=principal.user_id,
    )
    if parent is not None:
        parent._attach(category.id)
    return category


def move_category(
    principal: Principal,
    category: Category,
    old_parent: Category | None,
    new_parent: Category | None,
    tree: CategoryTree,
    parent_of: ParentLookup,
) -> None:
    """Put ``category`` (and its subtree) under ``new_parent`` (None: the top level).
    Save the category, both parents and the tree together."""
    require_can_manage_categories(principal)
    category._require_active()
    old_id = old_parent.id if old_parent is not None else None
    if old_id != category.parent_id:
        raise ValueError("old_parent must be the category's current parent")
    new_id = new_parent.id if new_parent is not None else None
    if new_id == category.parent_id:
        return
    if new_parent is not None:
        new_parent._require_active()
        if would_create_cycle(category.id, new_id, parent_of):
            raise CategoryCycle("a category cannot move under itself or its descendants")
        ancestry(new_parent.id, parent_of, MAX_CATEGORY_DEPTH - 1)
    category._moved(parent_id=new_id, by=principal.user_id)
    if old_parent is not None:
        old_parent._detach(category.id)
    if new_parent is not None:
        new_parent._attach(category.id)
    tree._restructured(category_id=category.id, parent_id=new_id)


def archive_category(principal: Principal, category: Category, parent: Category | None) -> None:
    """Archive a category with no active children, and detach it from its parent
    (save both together). Archiving twice changes nothing."""
    require_can_manage_categories(principal)
    if category.archived:
        return
    if (parent.id if parent is not None else None) != category.parent_id:
        raise ValueError("parent must be the category's current parent")
    if category.children:
        raise CategoryHasChildren(
            f"category {category.name!r} has {len(category.children)} active "
            "subcategories: move or archive them first"
        )
    category._archived(by=principal.user_id)
    if parent is not None:
        parent._detach(category.id)

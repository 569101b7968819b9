"""Concurrent reservations of the last units, through the real Postgres event store.

Many threads, released together by a barrier, each reserve one unit of a SKU that
has fewer units than threads, through the command handler (load, decide, save,
retry on conflict). Exactly the available units are reserved; every other thread
gets a clear InsufficientStock; none runs out of retries; the stored stream agrees.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from commands.catalog.inventory import InventoryApplication, InventoryCommands
from domain.access import Principal
from domain.inventory import InsufficientStock, StockItem, stock_item_id
from infra.postgres.server import eventsourcing_env
from infra.settings import Settings

pytestmark = pytest.mark.integration

THREADS = 40
ADMIN = Principal(uuid4(), uuid4(), frozenset({"customer", "admin"}))


class CountingInventory(InventoryApplication):
    """Counts the saves refused for a stale version: the races that really happened."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env=env)
        self.conflicts = 0
        self._lock = threading.Lock()

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        try:
            return super().save(*objs, **kwargs)
        except IntegrityError:
            with self._lock:
                self.conflicts += 1
            raise


class NoOwners:
    def seller_of_sku(self, sku: str) -> UUID | None:
        return None


@pytest.fixture
def inventory(database_url: str, settings: Settings) -> Iterator[InventoryCommands]:
    env = eventsourcing_env(database_url, settings)
    env["POSTGRES_MAX_OVERFLOW"] = str(THREADS)  # a connection per thread: contend on rows
    app = CountingInventory(env=env)
    try:
        yield InventoryCommands(app, NoOwners())
    finally:
        app.close()


def reserve_concurrently(inventory: InventoryCommands, sku: str, prefix: str) -> Counter[str]:
    barrier = threading.Barrier(THREADS)

    def reserve(n: int) -> str:
        barrier.wait()
        try:
            inventory.reserve(sku, f"{prefix}-{n}", 1)
        except InsufficientStock:
            return "insufficient"
        return "reserved"

    with ThreadPoolExecutor(THREADS) as pool:
        return Counter(pool.map(reserve, range(THREADS)))


@pytest.mark.parametrize("units", [1, 7, 25])
def test_concurrent_reservations_of_the_last_units_never_oversell(
    inventory: InventoryCommands, units: int
) -> None:
    sku = f"LAST-{units}"
    inventory.receive(ADMIN, sku, units)

    # Any other exception (ConcurrencyConflict included) fails the test.
    outcomes = reserve_concurrently(inventory, sku, "order")

    assert outcomes == {"reserved": units, "insufficient": THREADS - units}
    if units == 25:
        # The threads did race: many saves were refused and decided again. (Seen here:
        # 150-170 conflicts for 25 units; the contexts' usual 4 attempts ran out.)
        assert isinstance(inventory.app, CountingInventory) and inventory.app.conflicts > 0
    item = inventory.find(sku)
    assert item is not None
    assert (item.on_hand, item.available, len(item.reservations)) == (units, 0, units)
    assert set(item.reservations.values()) == {1}

    # The stored stream tells the same story, read fresh from the database.
    events = list(inventory.app.events.get(stock_item_id(sku)))
    reserved = [e for e in events if isinstance(e, StockItem.StockReserved)]
    assert len(reserved) == units
    assert len({e.reservation_id for e in reserved}) == units
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))


def test_released_units_are_reserved_again_exactly_once(inventory: InventoryCommands) -> None:
    inventory.receive(ADMIN, "CYCLE-1", 5)
    assert reserve_concurrently(inventory, "CYCLE-1", "first")["reserved"] == 5
    item = inventory.find("CYCLE-1")
    assert item is not None
    for rid in sorted(item.reservations)[:3]:
        inventory.release("CYCLE-1", rid)
    assert reserve_concurrently(inventory, "CYCLE-1", "second")["reserved"] == 3
    item = inventory.find("CYCLE-1")
    assert item is not None and (item.available, len(item.reservations)) == (0, 5)

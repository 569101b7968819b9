"""Inventory: the StockItem aggregate under random interleavings of commands, and the
InventoryCommands handlers against the in-memory (POPO) store.

A hypothesis state machine drives one SKU's stock through random receipts,
adjustments, reservations (new, repeated, conflicting), releases and commits (of
open, closed and unknown reservations) and threshold changes, against a model.
After every step: available stock is never negative, units are conserved
(received + adjustments - committed == on hand == available + reserved), low stock
alerted once per crossing, and replaying the events (in memory, and from a store
that snapshots every few versions) rebuilds the same state.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from commands.catalog.inventory import (
    INVENTORY_CONFLICT_ATTEMPTS,
    InventoryApplication,
    InventoryCommands,
    retry_contended,
)
from commands.errors import ConcurrencyConflict
from domain.access import Principal
from domain.errors import DomainError, NotPermitted, UnknownEntity
from domain.inventory import (
    CLOSED_MEMORY,
    MAX_ON_HAND,
    MAX_QUANTITY,
    InsufficientStock,
    InvalidQuantity,
    ReservationConflict,
    StockItem,
    UnknownReservation,
    open_stock_item,
    require_can_manage_stock,
    reserve_lines,
    stock_item_id,
)
from domain.money import InvalidSku

SKU = "SKU-1"
BY = UUID(int=7)


class SnapshottingInventory(InventoryApplication):
    snapshotting_intervals = {StockItem: 5}


def popo() -> InventoryApplication:
    return InventoryApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def replay(events: list[Any]) -> Any:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


class StockLifecycle(RuleBasedStateMachine):
    """One SKU, random commands, a model of the expected outcome of each."""

    reservation_ids = Bundle("reservation_ids")

    def __init__(self) -> None:
        super().__init__()
        self.app = SnapshottingInventory(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.item = open_stock_item(SKU.lower())
        # The model.
        self.received = 0
        self.adjusted = 0
        self.committed = 0
        self.open: dict[str, int] = {}
        self.closed: dict[str, str] = {}
        self.threshold: int | None = None
        self.alerted = False
        self.ids = 0
        # Every event, and the state at every version.
        self.events: list[Any] = []
        self.history: dict[int, StockItem] = {}
        self._commit(["Created"])

    # --- helpers ------------------------------------------------------------------

    @property
    def on_hand(self) -> int:
        return self.received + self.adjusted - self.committed

    @property
    def available(self) -> int:
        return self.on_hand - sum(self.open.values())

    def _commit(self, expected: list[str]) -> None:
        """Check the events of the last command: the expected ones, then the one
        LowStockReached the model calls for (if any)."""
        low = self.threshold is not None and self.available <= self.threshold
        if not low:
            self.alerted = False
        elif not self.alerted:
            expected = [*expected, "LowStockReached"]
            self.alerted = True
        new = list(self.item.pending_events)
        for name in expected:
            event(name)
        assert [type(e).__name__ for e in new] == expected
        if new and type(new[-1]).__name__ == "LowStockReached":
            assert new[-1].available == self.available  # type: ignore[attr-defined]
            assert new[-1].threshold == self.threshold  # type: ignore[attr-defined]
        self.events.extend(new)
        self.app.save(self.item)
        self.history[self.item.version] = copy.deepcopy(self.item)

    def _refused(self, error: type[DomainError], command: Callable[[], None]) -> None:
        with pytest.raises(error):
            command()
        self._commit([])

    def _new_id(self) -> str:
        self.ids += 1
        return f"order-{self.ids}"

    # --- receiving and adjusting --------------------------------------------------

    @rule(quantity=st.integers(1, 40))
    def receive(self, quantity: int) -> None:
        self.item.receive(quantity, BY)
        self.received += quantity
        self._commit(["StockReceived"])

    @rule(quantity=st.sampled_from([0, -1, MAX_QUANTITY + 1, 2.0, True, "3"]))
    def receive_a_bad_quantity(self, quantity: Any) -> None:
        self._refused(InvalidQuantity, lambda: self.item.receive(quantity, BY))

    @rule(delta=st.integers(-50, 50).filter(bool), reason=st.sampled_from(["count", " damage "]))
    def adjust(self, delta: int, reason: str) -> None:
        if delta < 0 and -delta > self.available:
            self._refused(InsufficientStock, lambda: self.item.adjust(delta, reason, BY))
            return
        self.item.adjust(delta, reason, BY)
        self.adjusted += delta
        self._commit(["StockAdjusted"])
        adjusted = [e for e in self.events if type(e).__name__ == "StockAdjusted"][-1]
        assert adjusted.reason == reason.strip()

    @rule(
        delta=st.sampled_from([0, MAX_QUANTITY + 1, -MAX_QUANTITY - 1, 1.0]),
        reason=st.sampled_from(["", "  ", "x" * 501]),
    )
    def adjust_badly(self, delta: Any, reason: str) -> None:
        self._refused(InvalidQuantity, lambda: self.item.adjust(delta, reason or "r", BY))
        self._refused(InvalidQuantity, lambda: self.item.adjust(1, reason, BY))

    @rule(threshold=st.none() | st.integers(0, 40))
    def set_threshold(self, threshold: int | None) -> None:
        self.item.set_low_stock_threshold(threshold, BY)
        changed = threshold != self.threshold
        self.threshold = threshold
        self._commit(["LowStockThresholdSet"] if changed else [])

    # --- reservations -------------------------------------------------------------

    @rule(target=reservation_ids, quantity=st.integers(1, 25))
    def reserve(self, quantity: int) -> Any:
        rid = self._new_id()
        if quantity > self.available:
            self._refused(InsufficientStock, lambda: self.item.reserve(rid, quantity))
            return multiple()
        self.item.reserve(rid, quantity)
        self.open[rid] = quantity
        self._commit(["StockReserved"])
        return rid

    @rule(rid=reservation_ids, other_quantity=st.booleans())
    def reserve_again(self, rid: str, other_quantity: bool) -> None:
        if rid in self.open:
            quantity = self.open[rid] + (1 if other_quantity else 0)
            if other_quantity:
                self._refused(ReservationConflict, lambda: self.item.reserve(rid, quantity))
            else:
                self.item.reserve(rid, quantity)  # a redelivered step: nothing new
                self._commit([])
        else:
            self._refused(ReservationConflict, lambda: self.item.reserve(rid, 1))

    @rule(rid=reservation_ids)
    def release(self, rid: str) -> None:
        self._close(rid, "released", self.item.release)

    @rule(rid=reservation_ids)
    def commit(self, rid: str) -> None:
        self._close(rid, "committed", self.item.commit)

    def _close(self, rid: str, outcome: str, command: Callable[[str], None]) -> None:
        if rid in self.open:
            command(rid)
            quantity = self.open.pop(rid)
            if outcome == "committed":
                self.committed += quantity
            self.closed[rid] = outcome
            name = "ReservationReleased" if outcome == "released" else "ReservationCommitted"
            self._commit([name])
        elif self.closed[rid] == outcome:
            command(rid)  # idempotent
            self._commit([])
        else:
            self._refused(ReservationConflict, lambda: command(rid))

    @rule(release=st.booleans())
    def close_an_unknown_reservation(self, release: bool) -> None:
        command = self.item.release if release else self.item.commit
        self._refused(UnknownReservation, lambda: command("never-reserved"))

    @rule(rid=st.sampled_from(["", " padded", "x" * 129, "line\nbreak"]))
    def reserve_with_a_malformed_id(self, rid: str) -> None:
        self._refused(InvalidQuantity, lambda: self.item.reserve(rid, 1))

    # --- invariants ---------------------------------------------------------------

    @invariant()
    def stock_is_never_negative(self) -> None:
        assert self.item.available >= 0
        assert self.item.on_hand >= 0
        assert all(q > 0 for q in self.item.reservations.values())

    @invariant()
    def units_are_conserved(self) -> None:
        assert self.item.on_hand == self.received + self.adjusted - self.committed
        assert self.item.on_hand == self.item.available + self.item.reserved
        assert self.item.reservations == self.open
        assert self.item.reserved == sum(self.open.values())
        assert self.item.closed == self.closed
        assert self.item.available == self.available

    @invariant()
    def low_stock_is_always_alerted(self) -> None:
        assert self.item.low_stock_threshold == self.threshold
        if self.item.is_low:
            assert self.item.low_stock_alerted
        assert self.item.low_stock_alerted == self.alerted

    @invariant()
    def the_events_tell_the_whole_story(self) -> None:
        received = sum(e.quantity for e in self.events if type(e).__name__ == "StockReceived")
        adjusted = sum(e.delta for e in self.events if type(e).__name__ == "StockAdjusted")
        reserved = {
            e.reservation_id: e.quantity for e in self.events if type(e).__name__ == "StockReserved"
        }
        committed = sum(
            reserved[e.reservation_id]
            for e in self.events
            if type(e).__name__ == "ReservationCommitted"
        )
        assert received + adjusted - committed == self.item.on_hand

    @invariant()
    def replaying_the_events_rebuilds_the_same_state(self) -> None:
        assert replay(self.events) == self.item
        assert self.app.repository.get(self.item.id) == self.item

    def teardown(self) -> None:
        for version, state in self.history.items():
            assert self.app.repository.get(self.item.id, version=version) == state


def test_stock_keeps_its_invariants_under_random_interleavings() -> None:
    run_state_machine_as_test(
        StockLifecycle, settings=settings(max_examples=150, stateful_step_count=50, deadline=None)
    )


# --- focused domain tests --------------------------------------------------------------


def test_the_stock_item_id_follows_the_normalised_sku() -> None:
    assert stock_item_id("ab-1") == stock_item_id(" AB-1 ") == open_stock_item("Ab-1").id
    assert stock_item_id("AB-1") != stock_item_id("AB-2")
    with pytest.raises(InvalidSku):
        open_stock_item("not a sku")


def test_insufficient_stock_says_what_was_asked_and_what_there_is() -> None:
    item = open_stock_item(SKU)
    item.receive(3, BY)
    with pytest.raises(InsufficientStock) as caught:
        item.reserve("o-1", 4)
    assert caught.value.code == "insufficient-stock"
    assert (caught.value.sku, caught.value.requested, caught.value.available) == (SKU, 4, 3)


def test_stock_on_hand_is_bounded() -> None:
    item = open_stock_item(SKU)
    for _ in range(MAX_ON_HAND // MAX_QUANTITY):
        item._stock_received(quantity=MAX_QUANTITY, by=BY)  # fast-forward, unchecked
    with pytest.raises(InvalidQuantity):
        item.receive(1, BY)
    with pytest.raises(InvalidQuantity):
        item.adjust(1, "found one", BY)


def test_commit_leaves_availability_alone_and_never_alerts() -> None:
    item = open_stock_item(SKU)
    item.receive(10, BY)
    item.set_low_stock_threshold(2, BY)
    item.reserve("o-1", 8)  # available 2: alert
    item.commit("o-1")
    names = [type(e).__name__ for e in item.collect_events()]
    assert names.count("LowStockReached") == 1
    assert (item.on_hand, item.available) == (2, 2)


def test_a_threshold_at_or_above_the_stock_alerts_at_once_and_zero_means_sold_out() -> None:
    item = open_stock_item(SKU)
    item.set_low_stock_threshold(0, BY)  # an empty SKU is sold out
    assert [type(e).__name__ for e in item.collect_events()][-1] == "LowStockReached"
    item.receive(5, BY)
    item.reserve("o-1", 5)
    events = [type(e).__name__ for e in item.collect_events()]
    assert events == ["StockReceived", "StockReserved", "LowStockReached"]
    item.set_low_stock_threshold(None, BY)
    assert not item.low_stock_alerted and not item.is_low


def test_closed_reservations_are_remembered_within_a_bounded_window() -> None:
    item = open_stock_item(SKU)
    item.receive(1, BY)
    for n in range(CLOSED_MEMORY + 1):
        item.reserve(f"o-{n}", 1)
        item.release(f"o-{n}")
    assert len(item.closed) == CLOSED_MEMORY
    assert "o-0" not in item.closed
    item.release(f"o-{CLOSED_MEMORY}")  # remembered: idempotent
    with pytest.raises(UnknownReservation):
        item.release("o-0")  # forgotten
    item.reserve("o-0", 1)  # forgotten ids may be reused
    assert item.reservations == {"o-0": 1}
    assert replay(list(item.collect_events())) == item


def test_reserve_lines_is_all_or_nothing() -> None:
    a, b = open_stock_item("A-1"), open_stock_item("B-1")
    a.receive(5, BY)
    b.receive(1, BY)
    a.collect_events()
    b.collect_events()
    with pytest.raises(InsufficientStock) as caught:
        reserve_lines({"A-1": a, "B-1": b}, "order-9", {"A-1": 2, "B-1": 2})
    assert caught.value.sku == "B-1"
    assert not a.pending_events and not b.pending_events
    reserve_lines({"A-1": a, "B-1": b}, "order-9", {"A-1": 2, "B-1": 1})
    reserve_lines({"A-1": a, "B-1": b}, "order-9", {"A-1": 2, "B-1": 1})  # repeated: no-op
    assert (a.available, b.available) == (3, 0)
    assert len(a.pending_events) == 1 and len(b.pending_events) == 1


@pytest.mark.parametrize(
    ("roles", "who", "seller", "allowed"),
    [
        ({"customer", "admin"}, "someone", None, True),
        ({"customer", "admin"}, "someone", "owner", True),
        ({"customer", "seller"}, "owner", "owner", True),
        ({"customer", "seller"}, "someone", "owner", False),
        ({"customer"}, "owner", "owner", False),
        ({"customer", "seller"}, "owner", None, False),
    ],
)
def test_who_manages_stock(roles: set[str], who: str, seller: str | None, allowed: bool) -> None:
    ids = {"owner": UUID(int=1), "someone": UUID(int=2)}
    principal = Principal(ids[who], uuid4(), frozenset(roles))
    seller_id = ids[seller] if seller else None
    if allowed:
        require_can_manage_stock(principal, seller_id)
    else:
        with pytest.raises(NotPermitted):
            require_can_manage_stock(principal, seller_id)


def test_a_decision_on_a_stale_version_cannot_be_saved() -> None:
    """Two writers load the same version and both reserve the last unit: the store
    refuses the second save, which is what the handlers' retry turns into a fresh
    decision."""
    app = popo()
    item = open_stock_item(SKU)
    item.receive(1, BY)
    app.save(item)
    first: StockItem = app.repository.get(item.id)
    second: StockItem = app.repository.get(item.id)
    first.reserve("o-1", 1)
    second.reserve("o-2", 1)
    app.save(first)
    with pytest.raises(IntegrityError):
        app.save(second)


# --- the command handlers ----------------------------------------------------------------

SELLER = Principal(UUID(int=100), uuid4(), frozenset({"customer", "seller"}))
OTHER_SELLER = Principal(UUID(int=101), uuid4(), frozenset({"customer", "seller"}))
ADMIN = Principal(UUID(int=102), uuid4(), frozenset({"customer", "admin"}))


class FakeOwners:
    def __init__(self, owners: dict[str, UUID]) -> None:
        self.owners = owners

    def seller_of_sku(self, sku: str) -> UUID | None:
        return self.owners.get(sku)


@pytest.fixture
def handlers() -> InventoryCommands:
    return InventoryCommands(popo(), FakeOwners({"SKU-1": SELLER.user_id, "SKU-2": SELLER.user_id}))


def test_receive_opens_the_stock_item_and_answers_a_position(handlers: InventoryCommands) -> None:
    written = handlers.receive(SELLER, "sku-1", 5)
    assert written.id == stock_item_id("SKU-1")
    assert written.position is not None and written.position.log == "inventory"
    item = handlers.find("SKU-1")
    assert item is not None and (item.sku, item.on_hand) == ("SKU-1", 5)


def test_only_the_seller_or_an_admin_manages_stock(handlers: InventoryCommands) -> None:
    with pytest.raises(NotPermitted):
        handlers.receive(OTHER_SELLER, "SKU-1", 5)
    with pytest.raises(NotPermitted):
        handlers.adjust(OTHER_SELLER, "SKU-1", 5, "found")
    with pytest.raises(NotPermitted):
        handlers.set_low_stock_threshold(OTHER_SELLER, "SKU-1", 1)
    with pytest.raises(NotPermitted):
        handlers.receive(SELLER, "NO-PRODUCT", 5)
    handlers.receive(ADMIN, "NO-PRODUCT", 5)
    handlers.receive(ADMIN, "SKU-1", 5)
    assert handlers.find("SKU-1") is not None


def test_the_reservation_saga_steps(handlers: InventoryCommands) -> None:
    handlers.receive(SELLER, "SKU-1", 3)
    handlers.set_low_stock_threshold(SELLER, "SKU-1", 1)
    assert handlers.reserve("sku-1", "order-1", 2).position is not None
    assert handlers.reserve("SKU-1", "order-1", 2).position is None  # redelivered
    with pytest.raises(InsufficientStock):
        handlers.reserve("SKU-1", "order-2", 2)
    with pytest.raises(InsufficientStock):
        handlers.reserve("UNSTOCKED", "order-2", 1)
    with pytest.raises(UnknownReservation):
        handlers.release("SKU-1", "order-2")
    with pytest.raises(UnknownReservation):
        handlers.commit("UNSTOCKED", "order-2")
    handlers.commit("SKU-1", "order-1")
    assert handlers.commit("SKU-1", "order-1").position is None
    with pytest.raises(ReservationConflict):
        handlers.release("SKU-1", "order-1")
    handlers.adjust(SELLER, "SKU-1", -1, "damaged")
    item = handlers.find("SKU-1")
    assert item is not None
    assert (item.on_hand, item.available, item.reservations) == (0, 0, {})
    stored: StockItem = handlers.app.repository.get(item.id)
    assert stored == item


def test_reserve_lines_saves_every_sku_or_none(handlers: InventoryCommands) -> None:
    handlers.receive(SELLER, "SKU-1", 5)
    handlers.receive(SELLER, "SKU-2", 1)
    with pytest.raises(InsufficientStock):
        handlers.reserve_lines("order-1", {"SKU-1": 2, "SKU-2": 2})
    with pytest.raises(InsufficientStock):
        handlers.reserve_lines("order-1", {"SKU-1": 2, "SKU-3": 1})
    with pytest.raises(InvalidQuantity):
        handlers.reserve_lines("order-1", {"SKU-1": 2, "sku-1": 1})
    with pytest.raises(InvalidQuantity):
        handlers.reserve_lines("order-1", {})
    item = handlers.find("SKU-1")
    assert item is not None and item.available == 5
    position = handlers.reserve_lines("order-1", {"sku-1": 2, "SKU-2": 1})
    assert position is not None
    assert handlers.reserve_lines("order-1", {"SKU-1": 2, "SKU-2": 1}) is None
    levels = [handlers.find(s) for s in ("SKU-1", "SKU-2")]
    assert [i.available for i in levels if i is not None] == [3, 0]


def test_retry_contended_retries_conflicts_then_answers_409(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    calls = 0

    @retry_contended
    def flaky(failures: int) -> str:
        nonlocal calls
        calls += 1
        if calls <= failures:
            raise IntegrityError("conflict")
        return "saved"

    assert flaky(INVENTORY_CONFLICT_ATTEMPTS - 1) == "saved"
    assert calls == INVENTORY_CONFLICT_ATTEMPTS
    assert len(sleeps) == INVENTORY_CONFLICT_ATTEMPTS - 1
    assert all(0 <= s <= 0.002 * 25 for s in sleeps)  # jitter, capped at 25x the base
    calls = 0
    with pytest.raises(ConcurrencyConflict):
        flaky(INVENTORY_CONFLICT_ATTEMPTS)
    assert calls == INVENTORY_CONFLICT_ATTEMPTS


def test_unknown_reservations_are_not_found_errors() -> None:
    assert issubclass(UnknownReservation, UnknownEntity)

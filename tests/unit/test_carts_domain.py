"""The Cart aggregate: lines and their bounds, merging a guest cart on login, the price
re-check before paying, checkout; and, under random command sequences, a cart that
always matches a model of its lines and is rebuilt by replaying its events."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from domain.carts import (
    Cart,
    CartClosed,
    EmptyCart,
    LineNotInCart,
    PricesChanged,
    cart_id_for,
    open_cart,
    open_guest_cart,
)
from domain.lines import MAX_LINE_QUANTITY, MAX_LINES, InvalidLine
from domain.money import InvalidSku, Money

SHOPPER = UUID(int=1)
PRODUCTS = {f"SKU-{n}": UUID(int=100 + n) for n in range(6)}


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def names(cart: Cart) -> list[str]:
    return [type(e).__name__ for e in cart.collect_events()]


def replay(events: list[Any]) -> Any:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


class CartLines(RuleBasedStateMachine):
    """Random adds, changes, removals, clears and price re-checks against a model:
    SKU -> (quantity, price)."""

    def __init__(self) -> None:
        super().__init__()
        self.store: Application[UUID] = Application(
            env={"PERSISTENCE_MODULE": "eventsourcing.popo"}
        )
        self.cart = open_cart(SHOPPER)
        self.model: dict[str, tuple[int, str]] = {}
        self.events: list[Any] = []
        self._save()

    def _save(self) -> None:
        self.events.extend(self.cart.pending_events)
        self.store.save(self.cart)

    @rule(
        sku=st.sampled_from(list(PRODUCTS)),
        quantity=st.integers(-1, 120),
        price=st.sampled_from(["1.00", "2.50"]),
    )
    def add(self, sku: str, quantity: int, price: str) -> None:
        held = self.model.get(sku, (0, price))[0]
        if not 1 <= quantity <= MAX_LINE_QUANTITY or held + quantity > MAX_LINE_QUANTITY:
            with pytest.raises(InvalidLine):
                self.cart.add_line(PRODUCTS[sku], sku, quantity, eur(price))
        else:
            self.cart.add_line(PRODUCTS[sku], sku.lower(), quantity, eur(price))
            self.model[sku] = (held + quantity, price)
        self._save()

    @rule(sku=st.sampled_from(list(PRODUCTS)), quantity=st.integers(0, 101))
    def change(self, sku: str, quantity: int) -> None:
        if sku not in self.model:
            with pytest.raises(LineNotInCart):
                self.cart.change_quantity(sku, quantity)
        elif not 1 <= quantity <= MAX_LINE_QUANTITY:
            with pytest.raises(InvalidLine):
                self.cart.change_quantity(sku, quantity)
        else:
            self.cart.change_quantity(sku, quantity)
            self.model[sku] = (quantity, self.model[sku][1])
        self._save()

    @rule(sku=st.sampled_from(list(PRODUCTS)))
    def remove(self, sku: str) -> None:
        self.cart.remove_line(sku)
        self.model.pop(sku, None)
        self._save()

    @rule()
    def clear(self) -> None:
        self.cart.clear()
        self.model = {}
        self._save()

    @rule(
        prices=st.dictionaries(st.sampled_from(list(PRODUCTS)), st.sampled_from(["1.00", "3.00"]))
    )
    def recheck(self, prices: dict[str, str]) -> None:
        changes = self.cart.recheck_prices({sku: eur(p) for sku, p in prices.items()})
        expected = {sku for sku, (_, seen) in self.model.items() if prices.get(sku) != seen}
        assert {c["sku"] for c in changes} == expected
        self.model = {
            sku: (quantity, prices[sku])
            for sku, (quantity, _) in self.model.items()
            if sku in prices
        }
        assert self.cart.recheck_prices({sku: eur(p) for sku, p in prices.items()}) == []
        self._save()

    @invariant()
    def the_cart_is_the_model(self) -> None:
        assert {
            sku: (entry["quantity"], entry["unit_price"]["amount"])
            for sku, entry in self.cart.lines.items()
        } == self.model
        assert all(1 <= q <= MAX_LINE_QUANTITY for q, _ in self.model.values())

    @invariant()
    def replaying_the_events_rebuilds_the_cart(self) -> None:
        assert replay(self.events) == self.cart
        assert self.store.repository.get(self.cart.id) == self.cart


def test_carts_match_their_model_under_random_commands() -> None:
    run_state_machine_as_test(
        CartLines, settings=settings(max_examples=100, stateful_step_count=30, deadline=None)
    )


def test_an_account_cart_is_found_from_its_owner() -> None:
    assert open_cart(SHOPPER).id == cart_id_for(SHOPPER)
    assert cart_id_for(SHOPPER) != cart_id_for(UUID(int=2))


def test_adding_a_sku_again_adds_to_its_line_at_the_newer_price() -> None:
    cart = open_cart(SHOPPER)
    cart.add_line(PRODUCTS["SKU-1"], "sku-1", 2, eur("5.00"))
    cart.add_line(PRODUCTS["SKU-1"], "SKU-1", 3, eur("4.00"))
    assert cart.lines["SKU-1"]["quantity"] == 5
    assert cart.total == eur("20.00")
    assert names(cart) == ["Opened", "LineAdded", "LineAdded"]


def test_a_cart_is_bounded_and_single_currency() -> None:
    cart = open_cart(SHOPPER)
    for n in range(MAX_LINES):
        cart.add_line(uuid4(), f"SKU-X{n}", 1, eur("1.00"))
    with pytest.raises(InvalidLine):
        cart.add_line(uuid4(), "SKU-ONE-MORE", 1, eur("1.00"))
    other = open_cart(SHOPPER)
    other.add_line(PRODUCTS["SKU-1"], "SKU-1", 1, eur("1.00"))
    with pytest.raises(InvalidLine):
        other.add_line(PRODUCTS["SKU-2"], "SKU-2", 1, Money.of("1.00", "USD"))
    with pytest.raises(InvalidLine):
        other.add_line(PRODUCTS["SKU-2"], "SKU-1", 1, eur("1.00"))  # another product's SKU
    for quantity in (0, -1, 10**9, True, 1.5):
        with pytest.raises(InvalidLine):
            other.add_line(PRODUCTS["SKU-2"], "SKU-2", quantity, eur("1.00"))  # type: ignore[arg-type]
    with pytest.raises(InvalidSku):
        other.add_line(PRODUCTS["SKU-2"], "not a sku", 1, eur("1.00"))
    assert other.total == eur("1.00")
    assert open_cart(SHOPPER).total is None


def test_a_guest_cart_merges_into_the_account_cart_and_closes() -> None:
    guest = open_guest_cart(uuid4())
    guest.add_line(PRODUCTS["SKU-1"], "SKU-1", 60, eur("1.00"))
    guest.add_line(PRODUCTS["SKU-2"], "SKU-2", 1, eur("2.00"))
    account = open_cart(SHOPPER)
    account.add_line(PRODUCTS["SKU-1"], "SKU-1", 70, eur("1.00"))
    account.collect_events()
    guest.collect_events()

    account.merge(guest)
    assert account.lines["SKU-1"]["quantity"] == MAX_LINE_QUANTITY  # 130, capped
    assert account.lines["SKU-2"]["quantity"] == 1
    merged = account.collect_events()
    assert [type(e).__name__ for e in merged] == ["GuestCartMerged"]
    assert merged[0].dropped == []  # type: ignore[attr-defined]
    assert names(guest) == ["MergedInto"]
    assert guest.merged_into == account.id and guest.lines == {}

    account.merge(guest)  # on a second login: nothing
    assert names(account) == [] and names(guest) == []
    with pytest.raises(CartClosed):
        guest.add_line(PRODUCTS["SKU-3"], "SKU-3", 1, eur("1.00"))
    with pytest.raises(CartClosed):
        open_cart(UUID(int=9)).merge(guest)


def test_guest_lines_that_do_not_fit_are_dropped_and_named() -> None:
    account = open_cart(SHOPPER)
    for n in range(MAX_LINES - 1):
        account.add_line(uuid4(), f"SKU-X{n}", 1, eur("1.00"))
    guest = open_guest_cart(uuid4())
    guest.add_line(PRODUCTS["SKU-1"], "SKU-1", 1, eur("1.00"))
    guest.add_line(PRODUCTS["SKU-2"], "SKU-2", 1, eur("1.00"))
    account.collect_events()
    account.merge(guest)
    merged = account.collect_events()[0]
    assert merged.dropped == ["SKU-2"]  # type: ignore[attr-defined]
    assert len(account.lines) == MAX_LINES

    usd = open_guest_cart(uuid4())
    usd.add_line(PRODUCTS["SKU-3"], "SKU-3", 1, Money.of("1.00", "USD"))
    euro = open_cart(UUID(int=5))
    euro.add_line(PRODUCTS["SKU-1"], "SKU-1", 1, eur("1.00"))
    euro.merge(usd)
    assert set(euro.lines) == {"SKU-1"}


def test_only_a_guest_cart_merges_and_only_into_an_account_cart() -> None:
    with pytest.raises(InvalidLine):
        open_cart(SHOPPER).merge(open_cart(UUID(int=2)))
    with pytest.raises(InvalidLine):
        open_guest_cart(uuid4()).merge(open_guest_cart(uuid4()))


def test_changed_prices_are_recorded_for_the_shopper_to_see_before_paying() -> None:
    cart = open_cart(SHOPPER)
    cart.add_line(PRODUCTS["SKU-1"], "SKU-1", 2, eur("5.00"))
    cart.add_line(PRODUCTS["SKU-2"], "SKU-2", 1, eur("7.00"))
    cart.add_line(PRODUCTS["SKU-3"], "SKU-3", 1, eur("1.00"))
    cart.collect_events()
    changes = cart.recheck_prices(
        {"SKU-1": eur("5.50"), "SKU-2": eur("7.00"), "SKU-3": Money.of("1.00", "USD")}
    )
    assert changes == [
        {"sku": "SKU-1", "previous": eur("5.00").to_dict(), "current": eur("5.50").to_dict()},
        {"sku": "SKU-3", "previous": eur("1.00").to_dict(), "current": None},
    ]
    assert names(cart) == ["PricesRechecked"]
    assert set(cart.lines) == {"SKU-1", "SKU-2"}
    assert cart.total == eur("18.00")
    error = PricesChanged(changes)
    assert error.code == "prices-changed" and error.changes == changes
    assert cart.recheck_prices({"SKU-1": eur("5.50"), "SKU-2": eur("7.00")}) == []


def test_check_out_empties_the_cart_once_per_order() -> None:
    cart = open_cart(SHOPPER)
    with pytest.raises(EmptyCart):
        cart.check_out(uuid4())
    cart.add_line(PRODUCTS["SKU-1"], "SKU-1", 2, eur("5.00"))
    order_id = uuid4()
    lines = cart.check_out(order_id)
    assert [(entry["sku"], entry["quantity"]) for entry in lines] == [("SKU-1", 2)]
    assert cart.lines == {} and cart.last_order_id == order_id
    assert cart.check_out(order_id) == []  # redelivered: nothing new
    assert names(cart) == ["Opened", "LineAdded", "CheckedOut"]
    with pytest.raises(EmptyCart):
        cart.check_out(uuid4())


def test_removing_what_is_not_there_and_clearing_an_empty_cart_record_nothing() -> None:
    cart = open_cart(SHOPPER)
    cart.remove_line("SKU-1")
    cart.clear()
    cart.add_line(PRODUCTS["SKU-1"], "SKU-1", 2, eur("5.00"))
    cart.change_quantity("sku-1", 2)
    assert names(cart) == ["Opened", "LineAdded"]

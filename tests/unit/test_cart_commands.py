"""CartCommands on the in-memory store: lines priced from the real catalog, guest and
account carts, merging at login, and checkout (prices rechecked, the order placed with
the cart emptied in one save, a retried checkout placing nothing twice)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.carts import Cart, CartClosed, EmptyCart, LineNotInCart, PricesChanged, cart_id_for
from domain.errors import UnknownEntity
from domain.lines import MAX_LINE_QUANTITY, InvalidLine
from domain.money import Money
from domain.order_status import OrderStatus
from domain.orders import Order
from tests.unit.ordering_fakes import ADDRESS, ADMIN, OK, MemoryShop, memory_shop


@pytest.fixture
def shop() -> MemoryShop:
    return memory_shop()


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def cart(shop: MemoryShop, cart_id: UUID) -> Cart:
    found = shop.ordering.app.find(Cart, cart_id)
    assert found is not None
    return found


def quantities(shop: MemoryShop, cart_id: UUID) -> dict[str, int]:
    return {sku: entry["quantity"] for sku, entry in cart(shop, cart_id).lines.items()}


def last_position(shop: MemoryShop) -> int | None:
    return shop.ordering.app.recorder.max_notification_id()


# --- lines --------------------------------------------------------------------------------


def test_a_line_goes_into_the_accounts_cart_at_the_catalogs_price(shop: MemoryShop) -> None:
    product_id, sku = shop.product(price="12.50")
    user = uuid4()
    written = shop.carts.add(cart_id_for(user), user, product_id, 2)
    assert written.id == cart_id_for(user)
    assert written.position is not None and written.position.log == "ordering"
    account_cart = cart(shop, cart_id_for(user))
    assert account_cart.owner_id == user
    assert account_cart.lines[sku]["unit_price"] == eur("12.50").to_dict()
    assert account_cart.total == eur("25.00")


def test_adding_a_sku_again_adds_to_its_line_at_the_newer_price(shop: MemoryShop) -> None:
    product_id, sku = shop.product(price="10.00")
    user = uuid4()
    shop.carts.add(cart_id_for(user), user, product_id, 1)
    shop.catalog_commands.change_price(ADMIN, product_id, eur("11.00"))
    shop.carts.add(cart_id_for(user), user, product_id, 2)
    line = cart(shop, cart_id_for(user)).lines[sku]
    assert (line["quantity"], line["unit_price"]) == (3, eur("11.00").to_dict())


def test_a_guest_cart_has_the_callers_id_and_no_owner(shop: MemoryShop) -> None:
    product_id, sku = shop.product()
    guest_cart_id = uuid4()
    assert shop.carts.add(guest_cart_id, None, product_id, 1).id == guest_cart_id
    assert cart(shop, guest_cart_id).owner_id is None
    assert quantities(shop, guest_cart_id) == {sku: 1}


def test_what_is_not_for_sale_does_not_go_into_a_cart(shop: MemoryShop) -> None:
    product_id, _ = shop.product()
    shop.catalog_commands.unpublish(ADMIN, product_id)
    user = uuid4()
    before = last_position(shop)
    with pytest.raises(InvalidLine, match="not for sale"):
        shop.carts.add(cart_id_for(user), user, product_id, 1)
    with pytest.raises(UnknownEntity):
        shop.carts.add(cart_id_for(user), user, uuid4(), 1)
    assert last_position(shop) == before
    assert shop.ordering.app.find(Cart, cart_id_for(user)) is None


def test_quantities_change_within_the_bounds_of_a_line(shop: MemoryShop) -> None:
    product_id, sku = shop.product()
    user = uuid4()
    cart_id = cart_id_for(user)
    shop.carts.add(cart_id, user, product_id, 2)
    assert shop.carts.change_quantity(cart_id, sku.lower(), 5).position is not None
    assert quantities(shop, cart_id) == {sku: 5}
    assert shop.carts.change_quantity(cart_id, sku, 5).position is None  # no change
    for refused in (0, MAX_LINE_QUANTITY + 1):
        with pytest.raises(InvalidLine):
            shop.carts.change_quantity(cart_id, sku, refused)
    with pytest.raises(InvalidLine, match=f"at most {MAX_LINE_QUANTITY}"):
        shop.carts.add(cart_id, user, product_id, MAX_LINE_QUANTITY - 4)
    assert quantities(shop, cart_id) == {sku: 5}


def test_changing_a_line_needs_the_cart_and_the_line(shop: MemoryShop) -> None:
    product_id, _ = shop.product()
    _, other_sku = shop.product()
    with pytest.raises(UnknownEntity):
        shop.carts.change_quantity(uuid4(), "SKU-1", 1)
    with pytest.raises(UnknownEntity):
        shop.carts.remove(uuid4(), "SKU-1")
    user = uuid4()
    shop.carts.add(cart_id_for(user), user, product_id, 1)
    with pytest.raises(LineNotInCart):
        shop.carts.change_quantity(cart_id_for(user), other_sku, 2)


def test_removing_and_clearing_record_only_what_changes(shop: MemoryShop) -> None:
    first, first_sku = shop.product()
    second, second_sku = shop.product()
    user = uuid4()
    cart_id = cart_id_for(user)
    shop.carts.add(cart_id, user, first, 1)
    shop.carts.add(cart_id, user, second, 1)
    assert shop.carts.remove(cart_id, first_sku).position is not None
    assert shop.carts.remove(cart_id, first_sku).position is None
    assert quantities(shop, cart_id) == {second_sku: 1}
    assert shop.carts.clear(cart_id).position is not None
    assert shop.carts.clear(cart_id).position is None
    assert quantities(shop, cart_id) == {}
    never = uuid4()
    assert shop.carts.clear(never).position is None
    assert shop.ordering.app.find(Cart, never) is None


# --- merging a guest cart at login --------------------------------------------------------


def test_a_guest_cart_merges_into_the_account_cart_once_and_closes(shop: MemoryShop) -> None:
    both, both_sku = shop.product()
    guest_only, guest_sku = shop.product()
    user, guest_cart_id = uuid4(), uuid4()
    shop.carts.add(cart_id_for(user), user, both, 1)
    shop.carts.add(guest_cart_id, None, both, 2)
    shop.carts.add(guest_cart_id, None, guest_only, 1)
    written = shop.carts.merge(user, guest_cart_id)
    assert written.id == cart_id_for(user) and written.position is not None
    assert quantities(shop, cart_id_for(user)) == {both_sku: 3, guest_sku: 1}
    assert cart(shop, guest_cart_id).merged_into == cart_id_for(user)
    assert cart(shop, guest_cart_id).lines == {}
    # Merged again (a second login with the same token): nothing.
    assert shop.carts.merge(user, guest_cart_id).position is None
    assert quantities(shop, cart_id_for(user)) == {both_sku: 3, guest_sku: 1}
    with pytest.raises(CartClosed):
        shop.carts.add(guest_cart_id, None, both, 1)
    # Into another account: refused, the guest cart is closed.
    with pytest.raises(CartClosed):
        shop.carts.merge(uuid4(), guest_cart_id)


def test_a_guest_cart_merges_into_an_account_without_a_cart_yet(shop: MemoryShop) -> None:
    product_id, sku = shop.product()
    user, guest_cart_id = uuid4(), uuid4()
    shop.carts.add(guest_cart_id, None, product_id, 2)
    shop.carts.merge(user, guest_cart_id)
    assert cart(shop, cart_id_for(user)).owner_id == user
    assert quantities(shop, cart_id_for(user)) == {sku: 2}


def test_merging_a_cart_never_filled_or_another_accounts_changes_nothing(
    shop: MemoryShop,
) -> None:
    product_id, _ = shop.product()
    user, other = uuid4(), uuid4()
    assert shop.carts.merge(user, uuid4()).position is None
    assert shop.ordering.app.find(Cart, cart_id_for(user)) is None
    shop.carts.add(cart_id_for(other), other, product_id, 1)
    before = last_position(shop)
    with pytest.raises(InvalidLine, match="only a guest cart"):
        shop.carts.merge(user, cart_id_for(other))
    assert last_position(shop) == before


# --- checkout -----------------------------------------------------------------------------


def filled(shop: MemoryShop, *lines: tuple[UUID, int]) -> UUID:
    """A new customer whose cart holds ``lines`` (product, quantity)."""
    user = uuid4()
    for product_id, quantity in lines:
        shop.carts.add(cart_id_for(user), user, product_id, quantity)
    return user


def test_checkout_places_the_cart_as_an_order_and_empties_it_in_one_save(
    shop: MemoryShop,
) -> None:
    shoe, shoe_sku = shop.product(price="20.00")
    sock, sock_sku = shop.product(price="2.50")
    user = filled(shop, (shoe, 1), (sock, 3))
    order_id = uuid4()
    written = shop.carts.checkout(user, order_id, ADDRESS, OK)
    assert written.id == order_id and written.position is not None
    order = shop.order(order_id)
    assert (order.customer_id, order.status) == (user, OrderStatus.PLACED)
    assert order.skus == {shoe_sku: 1, sock_sku: 3}
    assert order.total == eur("27.50")
    assert order.shipping_address == ADDRESS
    emptied = cart(shop, cart_id_for(user))
    assert (emptied.lines, emptied.last_order_id) == ({}, order_id)
    assert shop.payment_methods.token_for(order_id) == OK
    # The cart's CheckedOut and the order's Placed: the last two events, written together.
    last = shop.ordering.app.recorder.select_notifications(start=written.position.id - 1, limit=10)
    assert [n.topic.rsplit(".", 1)[-1] for n in last] == ["CheckedOut", "Placed"]
    assert last[-1].id == written.position.id


def test_a_retried_checkout_finds_the_order_it_placed(shop: MemoryShop) -> None:
    product_id, _ = shop.product()
    user = filled(shop, (product_id, 2))
    order_id = uuid4()
    first = shop.carts.checkout(user, order_id, ADDRESS, OK)
    again = shop.carts.checkout(user, order_id, ADDRESS, "tok_another")
    assert (again.id, again.position) == (order_id, None)
    assert first.position is not None and last_position(shop) == first.position.id
    assert shop.payment_methods.token_for(order_id) == OK
    assert shop.order(order_id).version == 1
    with pytest.raises(EmptyCart):  # another checkout: the cart went into the order
        shop.carts.checkout(user, uuid4(), ADDRESS, OK)


def test_an_empty_cart_is_not_checked_out(shop: MemoryShop) -> None:
    user, order_id = uuid4(), uuid4()
    with pytest.raises(EmptyCart):
        shop.carts.checkout(user, order_id, ADDRESS, OK)
    assert last_position(shop) is None
    assert shop.payment_methods.token_for(order_id) is None


def test_a_changed_price_refuses_checkout_once_with_the_new_prices(shop: MemoryShop) -> None:
    product_id, sku = shop.product(price="10.00")
    steady, _ = shop.product(price="1.00")
    user = filled(shop, (product_id, 2), (steady, 1))
    shop.catalog_commands.change_price(ADMIN, product_id, eur("12.00"))
    order_id = uuid4()
    with pytest.raises(PricesChanged) as refused:
        shop.carts.checkout(user, order_id, ADDRESS, OK)
    assert refused.value.changes == [
        {"sku": sku, "previous": eur("10.00").to_dict(), "current": eur("12.00").to_dict()}
    ]
    assert shop.ordering.app.find(Order, order_id) is None
    assert shop.payment_methods.token_for(order_id) is None
    assert cart(shop, cart_id_for(user)).total == eur("25.00")  # what the shopper now sees
    shop.carts.checkout(user, order_id, ADDRESS, OK)  # seen: it goes through
    assert shop.order(order_id).total == eur("25.00")


def test_a_line_no_longer_for_sale_is_dropped_and_the_rest_checked_out(
    shop: MemoryShop,
) -> None:
    gone, gone_sku = shop.product(price="5.00")
    kept, kept_sku = shop.product(price="3.00")
    user = filled(shop, (gone, 1), (kept, 2))
    shop.catalog_commands.unpublish(ADMIN, gone)
    order_id = uuid4()
    with pytest.raises(PricesChanged) as refused:
        shop.carts.checkout(user, order_id, ADDRESS, OK)
    assert [(c["sku"], c["current"]) for c in refused.value.changes] == [(gone_sku, None)]
    assert quantities(shop, cart_id_for(user)) == {kept_sku: 2}
    shop.carts.checkout(user, order_id, ADDRESS, OK)
    assert shop.order(order_id).skus == {kept_sku: 2}
    assert shop.order(order_id).total == eur("6.00")


CENTS = st.integers(min_value=0, max_value=99_999)


@settings(max_examples=25, deadline=None)
@given(
    lines=st.lists(
        st.tuples(CENTS, st.integers(1, MAX_LINE_QUANTITY), st.none() | CENTS),
        min_size=1,
        max_size=6,
    )
)
def test_an_order_costs_the_sum_of_its_lines_at_the_catalogs_prices_at_checkout(
    lines: list[tuple[int, int, int | None]],
) -> None:
    """Lines at any price (free ones too) and quantity; some repriced after they went
    into the cart. Checkout is refused once if any price moved, then the order totals
    exactly the lines at the prices of the moment, and holds each SKU's quantity."""
    shop = memory_shop()
    user = uuid4()
    expected_total = Decimal(0)
    expected_skus: dict[str, int] = {}
    moved = False
    for cents, quantity, new_cents in lines:
        product_id, sku = shop.product(price=str(Decimal(cents) / 100), stock=0)
        shop.carts.add(cart_id_for(user), user, product_id, quantity)
        price = cents
        if new_cents is not None and new_cents != cents:
            shop.catalog_commands.change_price(
                ADMIN, product_id, eur(str(Decimal(new_cents) / 100))
            )
            price, moved = new_cents, True
        expected_total += Decimal(price) / 100 * quantity
        expected_skus[sku] = quantity
    order_id = uuid4()
    if moved:
        with pytest.raises(PricesChanged):
            shop.carts.checkout(user, order_id, ADDRESS, OK)
    shop.carts.checkout(user, order_id, ADDRESS, OK)
    order = shop.order(order_id)
    assert order.total == eur(str(expected_total))
    assert order.skus == expected_skus
    assert (
        sum(
            (Money.from_dict(entry["unit_price"]) * entry["quantity"] for entry in order.lines),
            eur("0"),
        )
        == order.total
    )

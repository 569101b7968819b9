"""Carts and checkout: the command handlers of the ordering context's carts.

A shopper's cart is found from their account (``cart_id_for``); a guest's from the
signed token the guest holds (``domain.cart_tokens``), and merges into the account
cart at login or on request. Lines are priced from the catalog when added, and again
at checkout: a changed price is recorded on the cart and the checkout refused with
the new prices (``PricesChanged``), so the shopper sees them before paying; a second
attempt goes through.

Checkout empties the cart into a new order in one save (``Cart.CheckedOut`` and
``Order.Placed``); the order id comes from the idempotency key, so a retried checkout
finds the order it placed. The payment method token is kept aside for the checkout
saga (``PaymentMethods``): a gateway token is not card data, but it has no place in
the permanent event log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol
from uuid import UUID

from commands.application import Written, retry_on_conflict
from commands.ordering.application import OrderingApplication
from commands.ports import Clock
from commands.tracing import traced_commands
from domain.carts import Cart, PricesChanged, cart_id_for, open_cart, open_guest_cart
from domain.catalog import Product
from domain.errors import UnknownEntity
from domain.lines import InvalidLine
from domain.money import Money
from domain.orders import Order, place_order


class Products(Protocol):
    def get_product(self, product_id: UUID) -> Product:
        """The product; raises UnknownEntity when there is none."""
        ...


class PaymentMethods(Protocol):
    """Where checkout leaves the shopper's payment method token for the saga."""

    def keep(self, order_id: UUID, token: str) -> None:
        """Keep the token for this order (again with the same token: no change)."""

    def token_for(self, order_id: UUID) -> str | None: ...

    def forget(self, order_id: UUID) -> None:
        """The order's payment is decided: the token is no longer needed."""


def sellable_price(product: Product) -> Money | None:
    """What the product sells for now; None when it cannot be bought."""
    return product.price if product.is_published else None


@traced_commands
class CartCommands:
    def __init__(
        self,
        app: OrderingApplication,
        products: Products,
        payment_methods: PaymentMethods,
        clock: Clock,
    ) -> None:
        self.app = app
        self._products = products
        self._payment_methods = payment_methods
        self._clock = clock

    # --- lines ------------------------------------------------------------------------

    @retry_on_conflict
    def add(self, cart_id: UUID, owner_id: UUID | None, product_id: UUID, quantity: int) -> Written:
        """Add ``quantity`` of a product at its current price. ``owner_id`` opens the
        account's cart, None a guest's (``cart_id`` drawn by the caller)."""
        product = self._products.get_product(product_id)
        price = sellable_price(product)
        if price is None:
            raise InvalidLine("this product is not for sale")
        cart = self.app.find(Cart, cart_id) or (
            open_cart(owner_id) if owner_id is not None else open_guest_cart(cart_id)
        )
        cart.add_line(product_id, product.sku, quantity, price)
        return Written(cart.id, self.app.save_all(cart))

    @retry_on_conflict
    def change_quantity(self, cart_id: UUID, sku: str, quantity: int) -> Written:
        cart = self._cart(cart_id)
        cart.change_quantity(sku, quantity)
        return Written(cart_id, self.app.save_all(cart))

    @retry_on_conflict
    def remove(self, cart_id: UUID, sku: str) -> Written:
        cart = self._cart(cart_id)
        cart.remove_line(sku)
        return Written(cart_id, self.app.save_all(cart))

    @retry_on_conflict
    def clear(self, cart_id: UUID) -> Written:
        cart = self.app.find(Cart, cart_id)
        if cart is None:
            return Written(cart_id, None)
        cart.clear()
        return Written(cart_id, self.app.save_all(cart))

    @retry_on_conflict
    def merge(self, owner_id: UUID, guest_cart_id: UUID) -> Written:
        """Take the guest cart's lines into the account's cart (a guest cart never
        filled, or merged before: nothing changes)."""
        account_cart_id = cart_id_for(owner_id)
        guest = self.app.find(Cart, guest_cart_id)
        if guest is None or guest.merged_into == account_cart_id:
            return Written(account_cart_id, None)
        cart = self.app.find(Cart, account_cart_id) or open_cart(owner_id)
        cart.merge(guest)
        return Written(account_cart_id, self.app.save_all(cart, guest))

    # --- checkout ---------------------------------------------------------------------

    @retry_on_conflict
    def checkout(
        self,
        customer_id: UUID,
        order_id: UUID,
        shipping_address: Mapping[str, str],
        payment_method_token: str,
    ) -> Written:
        """Place the cart as order ``order_id`` at the catalog's current prices, or
        refuse with ``PricesChanged`` (recorded on the cart) when any moved."""
        if self.app.find(Order, order_id) is not None:
            return Written(order_id, None)  # placed by an earlier attempt
        cart = self.app.find(Cart, cart_id_for(customer_id)) or open_cart(customer_id)
        changes = cart.recheck_prices(self._current_prices(cart))
        if changes:
            self.app.save_all(cart)
            raise PricesChanged(changes)
        lines = cart.check_out(order_id)
        order = place_order(order_id, customer_id, lines, shipping_address, self._clock())
        self._payment_methods.keep(order_id, payment_method_token)
        return Written(order_id, self.app.save_all(cart, order))

    def _current_prices(self, cart: Cart) -> dict[str, Money | None]:
        prices: dict[str, Money | None] = {}
        for sku, entry in cart.lines.items():
            try:
                prices[sku] = sellable_price(self._products.get_product(entry["product_id"]))
            except UnknownEntity:
                prices[sku] = None
        return prices

    def _cart(self, cart_id: UUID) -> Cart:
        cart = self.app.find(Cart, cart_id)
        if cart is None:
            raise UnknownEntity("this cart is empty")
        return cart

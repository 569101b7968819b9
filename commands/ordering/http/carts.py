"""The shopper's cart and checkout.

A logged-in shopper's cart is their account's; a guest's is named by the
``X-Cart-Token`` the first ``POST /cart/lines`` hands out (``cart_token`` in the
answer). ``POST /cart/merge`` (or logging in with the header) moves a guest cart's
lines into the account cart. Changes answer the cart id and a consistency token for
``GET /cart``.

``POST /checkout`` needs an ``Idempotency-Key``: the order id follows from it, so a
retry finds the order placed. It answers 202 at once with the order id and a
consistency token; the checkout saga then reserves stock, authorizes the payment and
confirms or rejects the order (``GET /orders/{id}`` shows which, waiting on the
token). If a price changed since the shopper saw it, 409 ``prices-changed`` lists
the new prices (recorded on the cart) and nothing is ordered.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from commands.application import Written
from commands.http.callers import GuestCart
from commands.http.deps import CurrentUser, IdempotencyKey
from commands.http.parsed_body import ParsedBodyRoute
from commands.http.responses import respond, respond_idempotently, respond_written, written_body
from commands.ordering.http.deps import OrderingDeps, OrderingServices, Shopper
from commands.ordering.http.schemas import CartLine, CartMerge, CartQuantity, Checkout
from commands.ports import StoredResponse
from commands.users.http.schemas import CartLineWrittenOut, WrittenOut
from domain.access import Principal
from domain.cart_tokens import guest_cart_token, read_guest_cart_token
from domain.carts import cart_id_for
from domain.errors import UnknownEntity
from domain.refusals import Refused

router = APIRouter(tags=["carts"], route_class=ParsedBodyRoute)
SkuPath = Annotated[str, Path(min_length=1, max_length=64)]


class IdempotencyKeyRequired(Refused):
    status = 400
    code = "idempotency-key-required"


def _cart_of(shopper: Principal | None, guest_cart: UUID | None) -> UUID:
    if shopper is not None:
        return cart_id_for(shopper.user_id)
    if guest_cart is not None:
        return guest_cart
    raise UnknownEntity("no cart: log in, or send the X-Cart-Token of your guest cart")


@router.post("/cart/lines", response_model=CartLineWrittenOut)
def add_line(
    body: CartLine, shopper: Shopper, guest_cart: GuestCart, services: OrderingDeps
) -> JSONResponse:
    """Add a product at its current price. A guest without a cart gets one: keep
    the ``cart_token`` of the answer and send it as ``X-Cart-Token``."""
    if shopper is not None:
        written = services.carts.add(
            cart_id_for(shopper.user_id), shopper.user_id, body.product_id, body.quantity
        )
        return respond_written(written)
    cart_id = guest_cart or services.new_guest_cart_id()
    written = services.carts.add(cart_id, None, body.product_id, body.quantity)
    answer = written_body(written) | {
        "cart_token": guest_cart_token(services.cart_token_key, cart_id)
    }
    return respond(StoredResponse(200, answer))


@router.put("/cart/lines/{sku}", response_model=WrittenOut)
def change_quantity(
    sku: SkuPath,
    body: CartQuantity,
    shopper: Shopper,
    guest_cart: GuestCart,
    services: OrderingDeps,
) -> JSONResponse:
    cart_id = _cart_of(shopper, guest_cart)
    return respond_written(services.carts.change_quantity(cart_id, sku, body.quantity))


@router.delete("/cart/lines/{sku}", response_model=WrittenOut)
def remove_line(
    sku: SkuPath, shopper: Shopper, guest_cart: GuestCart, services: OrderingDeps
) -> JSONResponse:
    return respond_written(services.carts.remove(_cart_of(shopper, guest_cart), sku))


@router.delete("/cart", response_model=WrittenOut)
def clear(shopper: Shopper, guest_cart: GuestCart, services: OrderingDeps) -> JSONResponse:
    return respond_written(services.carts.clear(_cart_of(shopper, guest_cart)))


@router.post("/cart/merge", response_model=WrittenOut)
def merge(body: CartMerge, shopper: CurrentUser, services: OrderingDeps) -> JSONResponse:
    """Move a guest cart's lines into your cart (quantities of a SKU in both add up;
    what does not fit is dropped and named in the cart's history)."""
    return respond_written(merge_guest_cart(services, shopper, body.cart_token))


def merge_guest_cart(services: OrderingServices, shopper: Principal, cart_token: str) -> Written:
    guest_cart = read_guest_cart_token(services.cart_token_key, cart_token)
    return services.carts.merge(shopper.user_id, guest_cart)


@router.post("/checkout", status_code=202, response_model=WrittenOut)
def checkout(
    body: Checkout, shopper: CurrentUser, services: OrderingDeps, idempotency: IdempotencyKey
) -> JSONResponse:
    """Order the cart. Answers 202 with the order id at once; the order is then
    confirmed or rejected (with a reason) by the checkout saga."""
    if idempotency.key is None:
        raise IdempotencyKeyRequired("checkout needs an Idempotency-Key header")
    return respond_idempotently(
        idempotency,
        body,
        lambda: services.carts.checkout(
            shopper.user_id, idempotency.new_id(), body.shipping_address, body.payment_method
        ),
        status=202,
    )

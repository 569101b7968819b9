"""What shoppers and admins see of carts, orders and payments.

- ``GET /cart``: the logged-in shopper's cart, or a guest's (``X-Cart-Token``); from
  Redis when the cart view lives there, Postgres otherwise.
- ``GET /orders`` (your history), ``GET /orders/{id}`` (with its status timeline),
  ``GET /orders/{id}/payments``, ``GET /payments`` (your payment history).
- ``GET /admin/orders`` (filters: status, placed_from/placed_before, customer_id,
  currency with min_total/max_total), ``GET /admin/payments``.

Lists are keyset-paginated (``cursor`` = the previous page's ``next_cursor``). Each
waits for the consistency token a command answered (``X-Consistency-Token`` or
``?after=``), as everywhere in the read API. Others' orders answer 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from commands.http.parsed_body import ParsedBodyRoute
from domain.access import Principal
from domain.cart_tokens import read_guest_cart_token
from domain.carts import cart_id_for
from domain.errors import UnknownEntity
from domain.order_status import OrderStatus
from domain.refusals import BadQuery
from domain.users import Role
from projections.ordering.carts import CartState, empty_cart
from projections.ordering.queries import (
    OrderFilter,
    cart_view,
    list_orders,
    list_payments,
    order_detail,
)
from read_api.deps import CurrentAdmin, CurrentUser, Positions, Services, wait_for
from read_api.ordering_models import Cart, OrderDetail, OrderPage, OrderPayments, PaymentPage

router = APIRouter(tags=["orders"], route_class=ParsedBodyRoute)

MAX_CURSOR = 500
Cursor = Annotated[
    str | None, Query(max_length=MAX_CURSOR, description="next_cursor of the last page")
]
Limit = Annotated[int, Query(ge=1, le=100)]


@dataclass(frozen=True)
class OrderingReadServices:
    cart_token_key: bytes
    cart_from_store: Callable[[UUID], CartState | None] | None = None
    """Reads a cart from Redis (blocking); None: carts are in Postgres."""


async def _ordering(request: Request) -> OrderingReadServices:
    services: OrderingReadServices = request.app.state.ordering_read
    return services


OrderingRead = Annotated[OrderingReadServices, Depends(_ordering)]
_bearer = HTTPBearer(auto_error=False)


@router.get("/cart", response_model=Cart)
async def cart(
    services: Services,
    ordering: OrderingRead,
    positions: Positions,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Header(alias="X-Cart-Token", max_length=100)] = None,
) -> dict[str, Any]:
    if credentials is not None:
        shopper = await services.authenticate(credentials.credentials)
        cart_id = cart_id_for(shopper.user_id)
    elif token is not None:
        cart_id = read_guest_cart_token(ordering.cart_token_key, token)
    else:
        raise UnknownEntity("no cart: log in, or send the X-Cart-Token of your guest cart")
    await wait_for(services, "carts", positions)
    if ordering.cart_from_store is not None:
        state = await run_in_threadpool(ordering.cart_from_store, cart_id)
    else:
        async with services.pool.connection() as conn:
            state = await cart_view(conn, cart_id)
    return _cart_answer(state or empty_cart(cart_id))


def _cart_answer(state: CartState) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "owner_id"}


@router.get("/orders", response_model=OrderPage)
async def my_orders(
    shopper: CurrentUser,
    services: Services,
    positions: Positions,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> dict[str, Any]:
    await wait_for(services, "orders", positions)
    async with services.pool.connection() as conn:
        page = await list_orders(
            conn, OrderFilter(customer_id=shopper.user_id), after=cursor, limit=limit
        )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/orders/{order_id}", response_model=OrderDetail)
async def order(
    order_id: UUID, viewer: CurrentUser, services: Services, positions: Positions
) -> dict[str, Any]:
    await wait_for(services, "orders", positions)
    async with services.pool.connection() as conn:
        found = await order_detail(conn, order_id)
    order = _visible(found, viewer)
    if not viewer.has_role(Role.ADMIN):
        for step in order["timeline"]:
            step["actor"] = actor_seen_by(step["actor"], viewer.user_id)
    return order


@router.get("/orders/{order_id}/payments", response_model=OrderPayments)
async def order_payments(
    order_id: UUID, viewer: CurrentUser, services: Services, positions: Positions
) -> dict[str, Any]:
    # Whether the order is the viewer's is the orders view's answer.
    await wait_for(services, "orders", positions)
    await wait_for(services, "payments", positions)
    async with services.pool.connection() as conn:
        _visible(await order_detail(conn, order_id), viewer)
        page = await list_payments(conn, order_id=order_id, limit=100)
    return {"items": page.items}


@router.get("/payments", response_model=PaymentPage)
async def my_payments(
    shopper: CurrentUser,
    services: Services,
    positions: Positions,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> dict[str, Any]:
    await wait_for(services, "payments", positions)
    async with services.pool.connection() as conn:
        page = await list_payments(conn, customer_id=shopper.user_id, after=cursor, limit=limit)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/admin/orders", response_model=OrderPage)
async def admin_orders(
    admin: CurrentAdmin,
    services: Services,
    positions: Positions,
    status: OrderStatus | None = None,
    placed_from: datetime | None = None,
    placed_before: datetime | None = None,
    customer_id: UUID | None = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    min_total: Annotated[Decimal | None, Query(ge=0, max_digits=20)] = None,
    max_total: Annotated[Decimal | None, Query(ge=0, max_digits=20)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    if (min_total is not None or max_total is not None) and currency is None:
        raise BadQuery("an amount range needs a currency")
    where = OrderFilter(
        customer_id=customer_id,
        status=None if status is None else status.value,
        placed_from=placed_from,
        placed_before=placed_before,
        currency=currency,
        min_total=min_total,
        max_total=max_total,
    )
    await wait_for(services, "orders", positions)
    async with services.pool.connection() as conn:
        page = await list_orders(conn, where, after=cursor, limit=limit)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/admin/payments", response_model=PaymentPage)
async def admin_payments(
    admin: CurrentAdmin,
    services: Services,
    positions: Positions,
    customer_id: UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    await wait_for(services, "payments", positions)
    async with services.pool.connection() as conn:
        page = await list_payments(conn, customer_id=customer_id, after=cursor, limit=limit)
    return {"items": page.items, "next_cursor": page.next_cursor}


def actor_seen_by(actor: dict[str, Any], shopper_id: UUID) -> dict[str, Any]:
    """A shopper sees who acted on their order by kind only, but for their own acts:
    never another person's id, request or address (an admin's, say)."""
    if actor.get("id") == str(shopper_id):
        return actor
    return {"kind": actor["kind"], "id": None, "request_id": None, "client_address": None}


def _visible(found: dict[str, Any] | None, viewer: Principal) -> dict[str, Any]:
    if found is None or not viewer.may_see_user(found["customer_id"]):
        raise UnknownEntity("no such order")
    return found

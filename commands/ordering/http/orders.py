"""An order's lifecycle after checkout: the shopper confirms a payment after its 3-D
Secure authentication, cancels (before shipment) or asks for a return (within the
window after delivery); admins cancel with a reason, ship
(the payment is captured), mark delivered, decide returns, receive returned goods
and refund (``Idempotency-Key`` required: it moves money). Others' orders answer 404."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from commands.http.deps import CurrentAdmin, CurrentUser, IdempotencyKey
from commands.http.parsed_body import ParsedBodyRoute
from commands.http.responses import respond_idempotently, respond_written
from commands.ordering.http.carts import IdempotencyKeyRequired
from commands.ordering.http.deps import OrderingDeps
from commands.ordering.http.schemas import (
    AdminCancellation,
    Refund,
    ReturnRefusal,
    ReturnRequest,
    Shipment,
    ShopperCancellation,
)
from commands.users.http.schemas import WrittenOut

router = APIRouter(tags=["orders"], route_class=ParsedBodyRoute)


@router.post("/orders/{order_id}/cancel", response_model=WrittenOut)
def cancel(
    order_id: UUID, body: ShopperCancellation, shopper: CurrentUser, services: OrderingDeps
) -> JSONResponse:
    """Cancel your order before it ships: stock is released, the payment voided."""
    return respond_written(services.orders.cancel_by_shopper(shopper, order_id, body.reason))


@router.post("/orders/{order_id}/payment/confirm", response_model=WrittenOut)
def confirm_payment(order_id: UUID, shopper: CurrentUser, services: OrderingDeps) -> JSONResponse:
    """After authenticating the payment (3-D Secure: stripe.js, or the challenge at the
    order's ``authentication.approval_url``): the gateway is asked how it went and
    the order is then confirmed or rejected (follow ``GET /orders/{id}``). 409 when
    the order awaits no authentication."""
    return respond_written(services.orders.confirm_payment(shopper, order_id))


@router.post("/orders/{order_id}/return", response_model=WrittenOut)
def request_return(
    order_id: UUID, body: ReturnRequest, shopper: CurrentUser, services: OrderingDeps
) -> JSONResponse:
    return respond_written(services.orders.request_return(shopper, order_id, body.reason))


@router.post("/admin/orders/{order_id}/cancel", response_model=WrittenOut)
def admin_cancel(
    order_id: UUID, body: AdminCancellation, admin: CurrentAdmin, services: OrderingDeps
) -> JSONResponse:
    """Cancel at any time before delivery: stock released (unless shipped), the
    payment voided, or refunded if it was captured."""
    return respond_written(services.orders.cancel_by_admin(admin, order_id, body.reason))


@router.post("/admin/orders/{order_id}/ship", response_model=WrittenOut)
def ship(
    order_id: UUID, body: Shipment, admin: CurrentAdmin, services: OrderingDeps
) -> JSONResponse:
    """Capture the payment, then record the shipment (stock leaves the warehouse)."""
    return respond_written(
        services.orders.ship(admin, order_id, body.carrier, body.tracking_number)
    )


@router.post("/admin/orders/{order_id}/deliver", response_model=WrittenOut)
def deliver(order_id: UUID, admin: CurrentAdmin, services: OrderingDeps) -> JSONResponse:
    return respond_written(services.orders.mark_delivered(admin, order_id))


@router.post("/admin/orders/{order_id}/return/approve", response_model=WrittenOut)
def approve_return(order_id: UUID, admin: CurrentAdmin, services: OrderingDeps) -> JSONResponse:
    return respond_written(services.orders.approve_return(admin, order_id))


@router.post("/admin/orders/{order_id}/return/refuse", response_model=WrittenOut)
def refuse_return(
    order_id: UUID, body: ReturnRefusal, admin: CurrentAdmin, services: OrderingDeps
) -> JSONResponse:
    return respond_written(services.orders.refuse_return(admin, order_id, body.reason))


@router.post("/admin/orders/{order_id}/returned", response_model=WrittenOut)
def returned(order_id: UUID, admin: CurrentAdmin, services: OrderingDeps) -> JSONResponse:
    """The returned goods arrived: they go back into stock."""
    return respond_written(services.orders.mark_returned(admin, order_id))


@router.post("/admin/orders/{order_id}/refunds", status_code=201, response_model=WrittenOut)
def refund(
    order_id: UUID,
    body: Refund,
    admin: CurrentAdmin,
    services: OrderingDeps,
    idempotency: IdempotencyKey,
) -> JSONResponse:
    """Refund part (``amount``) or all of what was captured, never more."""
    if idempotency.key is None:
        raise IdempotencyKeyRequired("a refund needs an Idempotency-Key header")
    # The gateway's key follows from the caller's key (and is bounded in length):
    # another admin's same key is another refund there too.
    key = str(idempotency.new_id())
    return respond_idempotently(
        idempotency,
        body,
        lambda: services.orders.refund(
            admin, order_id, body.amount.money() if body.amount else None, body.reason, key
        ),
    )

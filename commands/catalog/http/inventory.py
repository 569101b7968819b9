"""Stock of a SKU, for its seller and admins: receipts, adjustments with a reason, the
low-stock threshold. Reserving, releasing and committing are the checkout saga's
steps and have no endpoint.

Receipts and adjustments honour an ``Idempotency-Key``: a retried receipt must not
count the same delivery twice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from commands.catalog.http.deps import Services
from commands.catalog.http.schemas import (
    LowStockThreshold,
    StockAdjustment,
    StockReceipt,
)
from commands.http.deps import CurrentUser, IdempotencyKey
from commands.http.parsed_body import ParsedBodyRoute
from commands.http.responses import respond_idempotently, respond_written
from commands.users.http.schemas import WrittenOut

router = APIRouter(prefix="/inventory", tags=["inventory"], route_class=ParsedBodyRoute)

SkuPath = Annotated[str, Path(min_length=1, max_length=64, description="2-64 of A-Z, 0-9 and '-'")]


@router.post("/{sku}/receipts", response_model=WrittenOut)
def receive(
    sku: SkuPath,
    body: StockReceipt,
    principal: CurrentUser,
    services: Services,
    idempotency: IdempotencyKey,
) -> JSONResponse:
    """Units arrived: stock on hand grows by ``quantity`` (1 to 1,000,000)."""

    return respond_idempotently(
        idempotency, body, lambda: services.inventory.receive(principal, sku, body.quantity), 200
    )


@router.post("/{sku}/adjustments", response_model=WrittenOut)
def adjust(
    sku: SkuPath,
    body: StockAdjustment,
    principal: CurrentUser,
    services: Services,
    idempotency: IdempotencyKey,
) -> JSONResponse:
    """Correct stock on hand (counting, damage, theft...); never below what is reserved."""

    return respond_idempotently(
        idempotency,
        body,
        lambda: services.inventory.adjust(principal, sku, body.delta, body.reason),
        200,
    )


@router.put("/{sku}/low-stock-threshold", response_model=WrittenOut)
def set_low_stock_threshold(
    sku: SkuPath, body: LowStockThreshold, principal: CurrentUser, services: Services
) -> JSONResponse:
    return respond_written(
        services.inventory.set_low_stock_threshold(principal, sku, body.threshold)
    )

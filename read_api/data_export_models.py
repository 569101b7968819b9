"""What a user's data export answers (``GET /users/me/data-export``, ``GET
/admin/users/{id}/data-export``; ``read_api.data_export`` writes it), for the OpenAPI
document. The document is streamed, section by section in this order, each item
validated against its model on the way out (no other key is written).

Left out on purpose: secrets (password hashes, session and refresh tokens, payment
method tokens, a 3-D Secure client secret, push subscription keys) and other people's
data (who else acted on an order is named by kind only, as the shopper's order view
does)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import Field

from domain.order_status import OrderStatus
from domain.payments import PaymentStatus
from domain.users import Role
from read_api.catalog_models import Answer
from read_api.notification_inbox_models import InboxEntry
from read_api.notification_models import Notification
from read_api.ordering_models import OrderLine, PaymentFact, TimelineEntry
from read_api.users_models import ProfileAddress, ProfileNotifications

FORMAT = "eventshop-data-export/1"


class ExportProfile(Answer):
    user_id: UUID
    email: str
    name: str
    phone: str | None
    roles: list[Role]
    email_verified: bool
    active: bool
    deactivation_reason: str | None
    registered_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    login_count: int = Field(ge=0)
    notification_preferences: ProfileNotifications | None = Field(
        description="Null once a profile change set it to null"
    )


class ExportOrder(Answer):
    order_id: UUID
    status: OrderStatus
    currency: str
    total: Decimal
    captured: Decimal
    refunded: Decimal
    lines: list[OrderLine]
    shipping_address: dict[str, str]
    payment_reference: str | None
    rejection_reason: str | None
    cancellation_reason: str | None
    carrier: str | None
    tracking_number: str | None
    placed_at: datetime
    delivered_at: datetime | None
    updated_at: datetime
    timeline: list[TimelineEntry] = Field(
        description="Oldest first; who acted by kind only, but for the user's own acts"
    )


class ExportRefund(Answer):
    amount: Decimal | None
    reference: str | None
    at: datetime


class ExportPayment(Answer):
    payment_id: UUID
    order_id: UUID
    gateway: str = Field(
        description="How it was paid: the payment provider (sandbox, stripe, paypal); "
        "the card or wallet token itself is never kept"
    )
    capture_mode: str
    status: PaymentStatus
    currency: str
    amount: Decimal
    authorized: Decimal
    captured: Decimal
    refunded: Decimal
    reference: str | None
    failure_code: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime
    refunds: list[ExportRefund] = Field(description="Oldest first")
    history: list[PaymentFact] = Field(description="Every fact the gateway reported, oldest first")


class ExportReview(Answer):
    review_id: UUID
    product_id: UUID
    rating: int
    title: str
    body: str
    verified_purchase: bool
    hidden: bool
    hidden_reason: str | None
    reply: str | None = Field(description="The seller's reply")
    replied_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ExportDevice(Answer):
    id: UUID
    platform: str = Field(examples=["webpush", "apns", "fcm"])
    created_at: datetime


class ExportNotifications(Answer):
    inbox: list[InboxEntry] = Field(description="The in-app inbox, newest first")
    deliveries: list[Notification] = Field(
        description="Every notification decided for the user, newest first, with its "
        "deliveries (channel, address, outcome) and their attempts"
    )
    devices: list[ExportDevice] = Field(description="Push devices, oldest first")


class DataExport(Answer):
    format: Literal["eventshop-data-export/1"] = Field(
        description="This document's layout and version"
    )
    generated_at: datetime
    user_id: UUID
    profile: ExportProfile
    addresses: list[ProfileAddress]
    orders: list[ExportOrder] = Field(description="Newest first")
    payments: list[ExportPayment] = Field(description="Newest first")
    reviews: list[ExportReview] = Field(description="Every review written, newest first")
    notifications: ExportNotifications

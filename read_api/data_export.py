"""A user's data export (GDPR art. 15 and 20): everything the shop holds about them,
as one JSON document (``read_api.data_export_models.DataExport``), assembled from the
read models through their own queries: the profile and the admins' view of the
account, the orders with their timelines, the payments, the reviews they wrote, the
in-app inbox, the notifications decided for them with their deliveries, and their
push devices.

Streamed, never held whole: each list is read a page at a time through its keyset
query (``PAGE`` rows, a pooled connection held for that page only, never while the
client reads), each item validated against its model and written out, so a user
with years of orders costs one page of memory and no connection between pages. No
cap on how much is exported: the export is the whole of it. Pages are read one
after another, not in one snapshot: something that happens while the document is
written may be in it or not, never half in it.

The profile is read first, before the answer starts: an unknown user is a 404
problem. A failure after that (the database gone mid-way) can only cut the answer
short: the document is then not valid JSON, never a valid one with data missing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from fastapi.responses import StreamingResponse
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from domain.errors import UnknownEntity
from domain.positions import Position
from projections.catalog.review_queries import reviews_by_author
from projections.cursors import Page
from projections.notifications.delivery_log import notifications_of
from projections.notifications.device_queries import devices_of
from projections.notifications.inbox_queries import inbox_page
from projections.ordering.queries import OrderFilter, list_orders, list_payments, order_timelines
from projections.users.queries import account_activity, user_profile
from read_api.data_export_models import (
    FORMAT,
    ExportDevice,
    ExportOrder,
    ExportPayment,
    ExportProfile,
    ExportReview,
)
from read_api.deps import ReadServices, wait_for
from read_api.notification_admin import NOTIFIER
from read_api.notification_inbox_models import InboxEntry
from read_api.notification_models import Notification
from read_api.ordering import actor_seen_by
from read_api.users_models import ProfileAddress

PAGE = 100
"""Rows read per query: the most of any one list held in memory at a time."""

EXPORTED_VIEWS = ("user_profiles", "admin_users", "orders", "payments", "product_reviews", NOTIFIER)
"""The views a consistency token is waited for in (each for the logs it follows)."""

M = TypeVar("M", bound=BaseModel)
Fetch = Callable[[AsyncConnection[Any], str | None], Awaitable[Page]]


async def data_export_response(
    user_id: UUID, services: ReadServices, positions: list[Position]
) -> StreamingResponse:
    """The export of ``user_id`` as a download; ``UnknownEntity`` (404) for no such user."""
    for view in EXPORTED_VIEWS:
        await wait_for(services, view, positions)
    export = UserDataExport(services.pool)
    profile = await export.profile(user_id)
    return StreamingResponse(
        export.document(profile, datetime.now(UTC)),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="eventshop-data-{user_id}.json"',
            "Cache-Control": "no-store",
        },
    )


class UserDataExport:
    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection[Any]], page_size: int = PAGE
    ) -> None:
        self._pool = pool
        self._page_size = page_size

    async def profile(self, user_id: UUID) -> dict[str, Any]:
        """The profile row with the account's activity; raises ``UnknownEntity``."""
        async with self._pool.connection() as conn:
            profile = await user_profile(conn, user_id)
            if profile is None:
                raise UnknownEntity("no such user")
            activity = await account_activity(conn, user_id)
        # The admins' view may lag the profile's by a moment: then no login yet.
        return {
            **profile,
            **(activity or {"last_login_at": None, "login_count": 0, "deactivation_reason": None}),
        }

    async def document(
        self, profile: dict[str, Any], generated_at: datetime
    ) -> AsyncIterator[bytes]:
        """The JSON document, in pieces: the keys in ``DataExport``'s order."""
        user_id: UUID = profile["user_id"]
        head = {"format": FORMAT, "generated_at": generated_at.isoformat(), "user_id": str(user_id)}
        yield _json_object_start(head)
        yield b',"profile":' + _fit(ExportProfile, profile).model_dump_json().encode()
        addresses = [ProfileAddress.model_validate(a) for a in profile["addresses"]]
        yield b',"addresses":[' + b",".join(_dump(a) for a in addresses) + b"]"

        lists = (
            (b',"orders":', self._orders(user_id)),
            (b',"payments":', self._payments(user_id)),
            (b',"reviews":', self._reviews(user_id)),
            (b',"notifications":{"inbox":', self._inbox(user_id)),
            (b',"deliveries":', self._deliveries(user_id)),
            (b',"devices":', self._devices(user_id)),
        )
        for key, pages in lists:  # each read only when its turn comes
            yield key
            async for piece in self._array(pages):
                yield piece
        yield b"}}"

    # --- the sections, page by page ------------------------------------------------

    def _orders(self, user_id: UUID) -> AsyncIterator[list[BaseModel]]:
        async def fetch(conn: AsyncConnection[Any], after: str | None) -> Page:
            page = await list_orders(
                conn, OrderFilter(customer_id=user_id), after=after, limit=self._page_size
            )
            timelines = await order_timelines(conn, [row["order_id"] for row in page.items])
            for row in page.items:
                row["timeline"] = [
                    {**step, "actor": actor_seen_by(step["actor"], user_id)}
                    for step in timelines.get(row["order_id"], [])
                ]
            return page

        return self._pages(fetch, lambda row: _fit(ExportOrder, row))

    def _payments(self, user_id: UUID) -> AsyncIterator[list[BaseModel]]:
        async def fetch(conn: AsyncConnection[Any], after: str | None) -> Page:
            return await list_payments(
                conn, customer_id=user_id, after=after, limit=self._page_size
            )

        def payment(row: dict[str, Any]) -> BaseModel:
            refunds = [
                {"amount": fact["amount"], "reference": fact["reference"], "at": fact["at"]}
                for fact in row["history"]
                if fact["kind"] == "refunded"
            ]
            return _fit(ExportPayment, {**row, "refunds": refunds})

        return self._pages(fetch, payment)

    def _reviews(self, user_id: UUID) -> AsyncIterator[list[BaseModel]]:
        async def fetch(conn: AsyncConnection[Any], after: str | None) -> Page:
            return await reviews_by_author(conn, user_id, after=after, limit=self._page_size)

        return self._pages(fetch, lambda row: _fit(ExportReview, row))

    def _inbox(self, user_id: UUID) -> AsyncIterator[list[BaseModel]]:
        async def fetch(conn: AsyncConnection[Any], after: str | None) -> Page:
            return Page(*await inbox_page(conn, user_id, after, self._page_size))

        return self._pages(fetch, lambda row: _fit(InboxEntry, row))

    def _deliveries(self, user_id: UUID) -> AsyncIterator[list[BaseModel]]:
        async def fetch(conn: AsyncConnection[Any], after: str | None) -> Page:
            return await notifications_of(conn, user_id=user_id, after=after, limit=self._page_size)

        return self._pages(fetch, lambda row: _fit(Notification, row))

    def _devices(self, user_id: UUID) -> AsyncIterator[list[BaseModel]]:
        async def fetch(conn: AsyncConnection[Any], after: str | None) -> Page:
            return await devices_of(conn, user_id, after=after, limit=self._page_size)

        return self._pages(fetch, lambda row: _fit(ExportDevice, row))

    # --- paging and writing ----------------------------------------------------------

    async def _pages(
        self, fetch: Fetch, item: Callable[[dict[str, Any]], BaseModel]
    ) -> AsyncIterator[list[BaseModel]]:
        """Every page of a keyset query, each on a connection held for that page only."""
        after: str | None = None
        while True:
            async with self._pool.connection() as conn:
                page = await fetch(conn, after)
            yield [item(row) for row in page.items]
            if page.next_cursor is None:
                return
            after = page.next_cursor

    @staticmethod
    async def _array(pages: AsyncIterator[list[BaseModel]]) -> AsyncIterator[bytes]:
        """A JSON array, one piece per page."""
        separator = b"["
        async for items in pages:
            if items:
                yield separator + b",".join(_dump(item) for item in items)
                separator = b","
        yield b"[]" if separator == b"[" else b"]"


def _fit(model: type[M], row: dict[str, Any]) -> M:
    """The model of a row: its fields only (a query may answer more columns)."""
    return model.model_validate({name: row[name] for name in model.model_fields if name in row})


def _dump(item: BaseModel) -> bytes:
    return item.model_dump_json().encode()


def _json_object_start(head: dict[str, str]) -> bytes:
    """``{`` and the given keys, without the closing brace."""
    return json.dumps(head, separators=(",", ":")).encode()[:-1]

"""The live inbox: ``GET /me/notifications/stream?ticket=...``, Server-Sent Events.

One ``StreamHub`` per process. Its one task holds one connection that LISTENs to
``notify_inbox`` and nudges the user's open streams. ``Inbox.put`` NOTIFYs the stored
item with its key and the key before it: a stream that has sent the key before it
sends the item without a query; any other stream (or an item too long for a
notification, or the user id alone from another store) reads what it has not sent
yet (``Inbox.after`` its last key). So nudges may coalesce or be lost (while the
connection is down) and nothing is missed or sent twice: after every (re)connection
of the listener every stream reads again. A connection costs a queue and a task
while it waits, no database connection (a bare ``StreamingResponse`` measured
cheapest: bench/README.md, "Live inbox").

``EventSource`` cannot send an Authorization header, so a stream opens with a
single-use ticket (``commands.notifications.tickets``), never the access token.
A browser's own reconnection reuses the URL and its used ticket, and is refused:
the client gets a new ticket and opens a new ``EventSource``, passing the last event
id it saw as ``?last_event_id=`` since a new one cannot set the Last-Event-ID header.

Known limit: keys order items by their creation time, so an item stored later than
a newer one (a delivery delayed past another) is not pushed to a stream that sent
the newer one; it is in the inbox's pages and unread count."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Header, Query, Request
from psycopg import sql
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from commands.http.parsed_body import ParsedBodyRoute
from commands.notifications.tickets import StreamTickets, redeem
from domain.refusals import BadQuery, Refused
from infra.entrypoints.openapi import PROBLEM
from infra.entrypoints.problems import MEDIA_TYPE
from projections.notifications.inbox import INBOX_CHANNEL, Inbox, InboxItem, valid_key
from read_api.notification_inbox_models import InboxEntry
from streams.supervision import TRANSIENT, backoff

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
"""A comment this often keeps proxies from closing an idle stream, and finds a gone
client on a server that does not report disconnections."""
BATCH = 100
"""Items read and sent at once, the replay after a reconnection included."""
PROBE_SECONDS = 30.0
"""How long the listener waits for a notification before checking its connection is
alive: a connection whose server vanished without a word would wait forever."""
MAX_BACKOFF = 10.0
CONNECT_TIMEOUT = 10
"""Seconds: a server that does not answer is retried, not waited on forever."""
APPLICATION_NAME = "eventshop-inbox-stream"
"""How the listener's connection shows in ``pg_stat_activity``."""
PING = b": ping\n\n"
MAX_STREAMS_PER_USER = 10
"""Tabs and devices of one person; more is a client leaking connections (or an attack
on the process's 10,000)."""


class TooManyStreams(Refused):
    status = 429
    code = "too-many-streams"


class Wake:
    """One stream's wake-up: the items the listener brought (previous key, key, the
    message) and whether it must read its inbox instead (a bare user id, a gap, the
    listener reconnected). A future per wait, not a task: 10,000 idle streams."""

    __slots__ = ("future", "items", "read")

    def __init__(self) -> None:
        self.read = True  # the first read: the replay, and whatever came since
        self.items: list[tuple[str | None, str, bytes]] = []
        self.future: asyncio.Future[None] | None = None

    def set(self) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(None)


class StreamHub:
    """The process's streams by user, and the listener that nudges them."""

    def __init__(
        self,
        conninfo: str,
        inbox: Inbox,
        tickets: StreamTickets,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        batch: int = BATCH,
        probe: float = PROBE_SECONDS,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self._conninfo = conninfo
        self._inbox = inbox
        self._tickets = tickets
        self._heartbeat = heartbeat
        self._batch = batch
        self._probe = probe
        self._max_backoff = max_backoff
        self._streams: dict[UUID, set[Wake]] = {}
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._closed = False
        self.listening = asyncio.Event()
        """Set while the listener LISTENs (for health and tests)."""

    async def start(self) -> None:
        self._closed = False
        self._task = asyncio.create_task(self._listen(), name="inbox-stream-listener")
        self._task.add_done_callback(_log_end)

    async def close(self) -> None:
        """Stop listening and end every open stream."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._nudge_all()

    @property
    def open_streams(self) -> int:
        return sum(len(streams) for streams in self._streams.values())

    async def open(
        self, request: Request, ticket: str | None, last_event_id: str | None
    ) -> StreamingResponse:
        """Refused (401) before anything is sent without a live ticket. A valid
        ``last_event_id`` replays what came after it; none (or not a key) starts at
        the user's newest item."""
        user_id = await run_in_threadpool(redeem, self._tickets, ticket)
        if len(self._streams.get(user_id, ())) >= MAX_STREAMS_PER_USER:
            raise TooManyStreams(
                f"at most {MAX_STREAMS_PER_USER} open streams per account: close one",
                headers={"Retry-After": "5"},
            )
        start = _key_or_none(last_event_id)
        if start is None:
            start = await run_in_threadpool(self._newest_key, user_id)
        return StreamingResponse(
            self._events(request, user_id, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def _newest_key(self, user_id: UUID) -> str:
        newest = self._inbox.page(user_id, None, 1)
        return newest[0].key if newest else ""  # "": every key is after it

    async def _events(self, request: Request, user_id: UUID, last: str) -> AsyncIterator[bytes]:
        """Registered before the first read, so whatever is stored after that read
        wakes it: nothing falls between the two. An item the listener brought is sent
        as it is when it directly follows the last one sent (its ``previous`` key);
        otherwise the stream reads its inbox after the last key."""
        loop = asyncio.get_running_loop()
        wake = Wake()
        wakes = self._streams.setdefault(user_id, set())
        wakes.add(wake)
        gone = asyncio.ensure_future(_disconnected(request))
        gone.add_done_callback(lambda _: wake.set())
        try:
            while not self._closed and not gone.done():
                if not wake.read and not wake.items:
                    wake.future = loop.create_future()
                    timer = loop.call_later(self._heartbeat, wake.set)
                    await wake.future
                    timer.cancel()
                    wake.future = None
                    if gone.done() or self._closed:
                        return
                    if not wake.read and not wake.items:
                        yield PING
                        continue
                brought, wake.items = wake.items, []
                ready = []
                for previous, key, message in brought:
                    if wake.read or key <= last:
                        continue  # read below, or sent already
                    if previous is None or previous <= last:
                        ready.append(message)
                        last = key
                    else:
                        wake.read = True  # one came between: read them in order
                if ready:
                    yield b"".join(ready)
                if wake.read:
                    try:
                        while True:
                            batch = await run_in_threadpool(
                                self._inbox.after, user_id, last, self._batch
                            )
                            if batch:
                                last = batch[-1].key
                                yield b"".join(_message(item) for item in batch)
                            if len(batch) < self._batch:
                                break
                        wake.read = False
                    except TRANSIENT as error:
                        log.warning(
                            "inbox stream of %s could not read its inbox: %r", user_id, error
                        )
                        await asyncio.sleep(self._heartbeat)  # still to read: retried
        finally:
            gone.cancel()
            wakes.discard(wake)
            if not wakes and self._streams.get(user_id) is wakes:
                del self._streams[user_id]

    async def _listen(self) -> None:
        """Survives the database going away: reconnects with a growing pause."""
        while True:
            try:
                await self._session()
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                self._failures += 1
                log.warning("inbox stream listener lost the database: %r; reconnecting", error)
            finally:
                self.listening.clear()
            await asyncio.sleep(backoff(self._failures, ceiling=self._max_backoff))

    async def _session(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=CONNECT_TIMEOUT,
        ) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(INBOX_CHANNEL)))
            self._failures = 0
            self.listening.set()
            self._nudge_all()  # what was stored while nobody listened
            while True:
                async for notify in conn.notifies(timeout=self._probe):
                    self._nudge_user(notify.payload)
                await conn.execute("SELECT 1")

    def _nudge_user(self, payload: str) -> None:
        """The payload is the stored item (``infra.postgres.inbox``: JSON with its
        user, key and the key before it) or, for one too long for a notification or
        from another store, the user id alone."""
        if payload.startswith("{"):
            try:
                data = json.loads(payload)
                item = _item(data)
            except (ValueError, KeyError, TypeError):
                log.warning("%s notified with something not an item", INBOX_CHANNEL)
                return
            wakes = self._streams.get(item.user_id)
            if wakes:
                brought = (data["p"], item.key, _message(item))
                for wake in wakes:
                    wake.items.append(brought)
                    wake.set()
            return
        try:
            user_id = UUID(payload)
        except ValueError:
            log.warning("%s notified with %r, not a user id", INBOX_CHANNEL, payload)
            return
        for wake in self._streams.get(user_id, ()):
            wake.read = True
            wake.set()

    def _nudge_all(self) -> None:
        for wakes in self._streams.values():
            for wake in wakes:
                wake.read = True
                wake.set()


def _item(data: dict[str, Any]) -> InboxItem:
    item = InboxItem(
        user_id=UUID(data["u"]),
        notification_id=UUID(data["n"]),
        kind=data["kind"],
        title=data["t"],
        body=data["b"],
        link=data["l"],
        created_at=datetime.fromisoformat(data["c"]),
        read_at=datetime.fromisoformat(data["r"]) if data["r"] else None,
    )
    if item.key != data["k"]:
        raise ValueError("the key does not match the item")
    return item


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone: the stream's task must end with it."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _key_or_none(key: str | None) -> str | None:
    if key is None:
        return None
    try:
        return valid_key(key)
    except BadQuery:
        return None  # not one this stream sent: start as without it


def _message(item: InboxItem) -> bytes:
    entry = InboxEntry(
        id=item.notification_id,
        kind=item.kind,
        title=item.title,
        body=item.body,
        link=item.link,
        created_at=item.created_at,
        read=item.read_at is not None,
        key=item.key,
    )
    return b"id: %s\nevent: notification\ndata: %s\n\n" % (
        item.key.encode(),
        entry.model_dump_json().encode(),
    )


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("inbox stream listener stopped: no live notifications", exc_info=error)


router = APIRouter(tags=["notifications"], route_class=ParsedBodyRoute)

_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `event: notification`, `id` the item's key, "
        "`data` an inbox item as in GET /me/notifications; a `: ping` comment every 15 s",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    401: {
        "description": "No ticket, or one unknown, expired or used (`invalid-stream-ticket`)",
        "content": {MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{PROBLEM}"}}},
    },
    429: {
        "description": f"The account has {MAX_STREAMS_PER_USER} streams open already",
        "content": {MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{PROBLEM}"}}},
    },
}


@router.get(
    "/me/notifications/stream",
    response_class=StreamingResponse,
    responses=_STREAM_DOC,
)
async def notification_stream(
    request: Request,
    ticket: Annotated[
        str | None, Query(description="From POST /me/notifications/stream-tickets; used once")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Replay what came after this item's key"),
    ] = None,
    last_event_id_query: Annotated[
        str | None,
        Query(
            alias="last_event_id",
            description="Same as the Last-Event-ID header, for a new EventSource",
        ),
    ] = None,
) -> StreamingResponse:
    """New notifications as they arrive. No length limits on the parameters: a bad
    ticket is 401 and a bad event id is ignored, whatever their length."""
    hub: StreamHub = request.app.state.notification_stream
    return await hub.open(request, ticket, last_event_id or last_event_id_query)

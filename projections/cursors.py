"""Opaque keyset-pagination cursors: the sort they belong to and the last row's
sort key, typed on the way back in (a cursor is client input)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.sql import SQL, Composed

from domain.refusals import BadQuery


class BadCursor(BadQuery, ValueError):
    """A pagination cursor this API did not issue (or issued for another sort)."""


@dataclass(frozen=True)
class Page:
    """A page of a keyset-paginated list, with the cursor of the next one."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(kind: str, values: list[Any]) -> str:
    raw = json.dumps([kind, [str(v) for v in values]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def fetch_page(
    conn: AsyncConnection[Any],
    statement: str | SQL | Composed,
    params: list[Any],
    *,
    limit: int,
    kind: str,
    keys: tuple[str, ...],
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` rows of a keyset-ordered ``statement`` (its last placeholder is
    the ``LIMIT``), and the cursor of the next page, made of the last row's ``keys``,
    when there is one: one row more is asked for to know."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(statement, [*params, limit + 1])
    rows = await cursor.fetchall()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(kind, [rows[-1][key] for key in keys])


def decode_cursor(cursor: str, kind: str, types: list[type]) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found_kind, raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if found_kind != kind or not isinstance(raw, list) or len(raw) != len(types):
            raise ValueError("another sort")
        return [_parse(t, str(v)) for t, v in zip(types, raw, strict=True)]
    except (ValueError, TypeError, InvalidOperation, UnicodeDecodeError) as error:
        raise BadCursor("the cursor is not one this API issued for this query") from error


def _parse(kind: type, text: str) -> Any:
    if kind is Decimal:
        value = Decimal(text)
        if not value.is_finite():
            raise ValueError("not finite")
        return value
    if kind is datetime:
        return datetime.fromisoformat(text)
    if kind is float:
        number = float(text)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("not finite")
        return number
    if kind is UUID:
        return UUID(text)
    if kind is int:
        return int(text)
    if kind is str:
        return text
    raise ValueError(kind)

"""Queries over the users read models, as the read API and authentication ask them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from projections.cursors import decode_cursor, fetch_page


async def user_profile(conn: AsyncConnection[Any], user_id: UUID) -> dict[str, Any] | None:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT user_id, email, name, phone, addresses, notification_preferences, roles, "
        "email_verified, active, registered_at, updated_at "
        "FROM read.user_profiles WHERE user_id = %s",
        (user_id,),
    )
    return await cursor.fetchone()


async def account_activity(conn: AsyncConnection[Any], user_id: UUID) -> dict[str, Any] | None:
    """What the admins' view keeps of a user beyond the profile: logins and why the
    account was deactivated (their data export)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT last_login_at, login_count, deactivation_reason "
        "FROM read.admin_users WHERE user_id = %s",
        (user_id,),
    )
    return await cursor.fetchone()


async def session_roles(
    conn: AsyncConnection[Any], user_id: UUID, session_id: UUID
) -> list[str] | None:
    """The roles of a live session's user; None when the session is unknown, revoked,
    expired, its user deactivated, or the password changed since it started."""
    cursor = await conn.execute(
        "SELECT u.roles FROM read.access_sessions s JOIN read.access_users u USING (user_id) "
        "WHERE s.session_id = %s AND s.user_id = %s AND NOT s.revoked AND u.active "
        "AND s.expires_at > now() AND s.credentials_version = u.credentials_version",
        (session_id, user_id),
    )
    row = await cursor.fetchone()
    return None if row is None else list(row[0])


@dataclass(frozen=True)
class UserFilter:
    role: str | None = None
    active: bool | None = None
    email_prefix: str | None = None


async def list_users(
    conn: AsyncConnection[Any], where: UserFilter, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, keyset-paginated: the cost of a page does not grow with its depth."""
    clauses: list[str] = []
    params: list[Any] = []
    if where.role is not None:
        clauses.append("roles @> ARRAY[%s]")
        params.append(where.role)
    if where.active is not None:
        clauses.append("active = %s")
        params.append(where.active)
    if where.email_prefix:
        clauses.append("email LIKE %s")
        params.append(_escape_like(where.email_prefix.lower()) + "%")
    if after is not None:
        clauses.append("(registered_at, user_id) < (%s, %s)")
        params.extend(decode_cursor(after, "users", [datetime, UUID]))
    sql = "SELECT * FROM read.admin_users"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY registered_at DESC, user_id DESC LIMIT %s"
    return await fetch_page(
        conn, sql, params, limit=limit, kind="users", keys=("registered_at", "user_id")
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

"""Read models of the users context: what a user sees of their profile, what an
admin lists, and the access view that authentication checks on every request.

``User.Erased`` (ADR 0024) blanks what each view holds of the user's personal data
to the values a replay gives once the user's key is gone (``domain.personal_data``):
the registration's email and name read as erased, and each profile change as no
change, so the profile is left with the defaults of a fresh registration. A rebuild
after the erasure therefore writes the same rows as the live view.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Identifier
from psycopg.types.json import Jsonb

from domain.personal_data import ERASED_USER
from domain.sessions import Session
from domain.users import DEFAULT_NOTIFICATION_PREFERENCES, PROFILE_FIELDS, User
from projections.engine import View, ViewProjection


def erased_values(user_id: UUID) -> dict[str, Any]:
    """The user's personal attributes as they read once erased."""
    return {name: erased(user_id) for name, erased in ERASED_USER.items()}


class UserProfilesView(View):
    name = "user_profiles"
    follows = ("users",)
    tables = {
        "user_profiles": """
            user_id uuid PRIMARY KEY,
            email text NOT NULL,
            name text NOT NULL,
            phone text,
            addresses jsonb NOT NULL,
            notification_preferences jsonb NOT NULL,
            roles text[] NOT NULL,
            email_verified boolean NOT NULL,
            active boolean NOT NULL,
            registered_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        """
    }


class UserProfilesProjection(ViewProjection[UserProfilesView]):
    name = "user_profiles"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        match event:
            case User.Registered():
                cursor.execute(
                    "INSERT INTO user_profiles VALUES "
                    "(%s, %s, %s, NULL, '[]', %s, ARRAY['customer'], false, true, %s, %s)",
                    (
                        event.originator_id,
                        event.email,
                        event.name,
                        Jsonb(DEFAULT_NOTIFICATION_PREFERENCES),
                        event.timestamp,
                        event.timestamp,
                    ),
                )
            case User.ProfileUpdated():
                # An erased user's changes replay as none ({}): the change still dates.
                changes = {k: v for k, v in event.changes.items() if k in PROFILE_FIELDS}
                values = [
                    Jsonb(v) if k in ("addresses", "notification_preferences") else v
                    for k, v in changes.items()
                ]
                assignments: list[str | Composable] = [
                    SQL("{0} = %s").format(Identifier(column)) for column in changes
                ]
                self._update(cursor, event, assignments, values)
            case User.EmailVerified() | User.PasswordReset():
                self._update(cursor, event, ["email_verified = true"], [])
            case User.RoleGranted():
                self._update(cursor, event, ["roles = array_append(roles, %s)"], [event.role])
            case User.RoleRevoked():
                self._update(cursor, event, ["roles = array_remove(roles, %s)"], [event.role])
            case User.Deactivated():
                self._update(cursor, event, ["active = false"], [])
            case User.Erased():
                erased = erased_values(event.originator_id)
                self._update(
                    cursor,
                    event,
                    [
                        "email = %s, name = %s, phone = %s, addresses = %s, "
                        "notification_preferences = %s, active = false"
                    ],
                    [
                        erased["email"],
                        erased["name"],
                        erased["phone"],
                        Jsonb(erased["addresses"]),
                        # Sealed with the rest of each change: a replay never sees them.
                        Jsonb(DEFAULT_NOTIFICATION_PREFERENCES),
                    ],
                )

    def _update(
        self,
        cursor: Cursor[DictRow],
        event: Any,
        assignments: list[str | Composable],
        values: list[Any],
    ) -> None:
        parts: list[Composable] = [SQL(a) if isinstance(a, str) else a for a in assignments]
        statement = SQL("UPDATE user_profiles SET {0} WHERE user_id = %s").format(
            SQL(", ").join([*parts, SQL("updated_at = %s")])
        )
        cursor.execute(statement, (*values, event.timestamp, event.originator_id))


class AdminUsersView(View):
    name = "admin_users"
    follows = ("users",)
    tables = {
        "admin_users": """
            user_id uuid PRIMARY KEY,
            email text NOT NULL,
            name text NOT NULL,
            roles text[] NOT NULL,
            email_verified boolean NOT NULL,
            active boolean NOT NULL,
            deactivation_reason text,
            registered_at timestamptz NOT NULL,
            last_login_at timestamptz,
            login_count integer NOT NULL
        """
    }
    indexes = [
        "CREATE INDEX IF NOT EXISTS admin_users_newest ON {schema}.admin_users "
        "(registered_at DESC, user_id DESC)",
        "CREATE INDEX IF NOT EXISTS admin_users_email ON {schema}.admin_users "
        "(email text_pattern_ops)",
        "CREATE INDEX IF NOT EXISTS admin_users_roles ON {schema}.admin_users USING gin (roles)",
    ]


class AdminUsersProjection(ViewProjection[AdminUsersView]):
    name = "admin_users"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        match event:
            case User.Registered():
                cursor.execute(
                    "INSERT INTO admin_users VALUES "
                    "(%s, %s, %s, ARRAY['customer'], false, true, NULL, %s, NULL, 0)",
                    (event.originator_id, event.email, event.name, event.timestamp),
                )
            case User.ProfileUpdated() if "name" in event.changes:
                self._set(cursor, event.originator_id, "name = %s", event.changes["name"])
            case User.EmailVerified() | User.PasswordReset():
                self._set(cursor, event.originator_id, "email_verified = %s", True)
            case User.RoleGranted():
                self._set(
                    cursor, event.originator_id, "roles = array_append(roles, %s)", event.role
                )
            case User.RoleRevoked():
                self._set(
                    cursor, event.originator_id, "roles = array_remove(roles, %s)", event.role
                )
            case User.Deactivated():
                cursor.execute(
                    "UPDATE admin_users SET active = false, deactivation_reason = %s "
                    "WHERE user_id = %s",
                    (event.reason, event.originator_id),
                )
            case User.Erased():
                # The deactivation reason, if any, stays: an admin's note, not sealed.
                erased = erased_values(event.originator_id)
                cursor.execute(
                    "UPDATE admin_users SET email = %s, name = %s, active = false "
                    "WHERE user_id = %s",
                    (erased["email"], erased["name"], event.originator_id),
                )
            case Session.Started():
                cursor.execute(
                    "UPDATE admin_users SET last_login_at = %s, login_count = login_count + 1 "
                    "WHERE user_id = %s",
                    (event.timestamp, event.user_id),
                )

    def _set(self, cursor: Cursor[DictRow], user_id: Any, assignment: str, value: Any) -> None:
        statement = SQL("UPDATE admin_users SET {0} WHERE user_id = %s").format(SQL(assignment))
        cursor.execute(statement, (value, user_id))


class UserAccessView(View):
    name = "user_access"
    follows = ("users",)
    tables = {
        "access_users": """
            user_id uuid PRIMARY KEY,
            roles text[] NOT NULL,
            active boolean NOT NULL,
            credentials_version integer NOT NULL
        """,
        "access_sessions": """
            session_id uuid PRIMARY KEY,
            user_id uuid NOT NULL,
            credentials_version integer NOT NULL,
            revoked boolean NOT NULL,
            expires_at timestamptz NOT NULL
        """,
    }


class UserAccessProjection(ViewProjection[UserAccessView]):
    """Authentication's view: a token is honoured only while its session is live,
    its user active, and no password change has happened since it started."""

    name = "user_access"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        match event:
            case User.Registered():
                cursor.execute(
                    "INSERT INTO access_users VALUES (%s, ARRAY['customer'], true, 1)",
                    (event.originator_id,),
                )
            case User.RoleGranted():
                self._user(cursor, event, "roles = array_append(roles, %s)", event.role)
            case User.RoleRevoked():
                self._user(cursor, event, "roles = array_remove(roles, %s)", event.role)
            case User.Deactivated() | User.Erased():
                # An erased account is closed for good: its tokens stop working at once.
                self._user(cursor, event, "active = %s", False)
            case User.PasswordReset() | User.PasswordChanged():
                self._user(cursor, event, "credentials_version = credentials_version + %s", 1)
            case Session.Started():
                cursor.execute(
                    "INSERT INTO access_sessions VALUES (%s, %s, %s, false, %s)",
                    (
                        event.originator_id,
                        event.user_id,
                        event.credentials_version,
                        event.expires_at,
                    ),
                )
            case Session.Revoked():
                cursor.execute(
                    "UPDATE access_sessions SET revoked = true WHERE session_id = %s",
                    (event.originator_id,),
                )

    def _user(self, cursor: Cursor[DictRow], event: Any, assignment: str, value: Any) -> None:
        statement = SQL("UPDATE access_users SET {0} WHERE user_id = %s").format(SQL(assignment))
        cursor.execute(statement, (value, event.originator_id))


USER_VIEWS: list[tuple[type[View], type[ViewProjection[Any]]]] = [
    (UserProfilesView, UserProfilesProjection),
    (AdminUsersView, AdminUsersProjection),
    (UserAccessView, UserAccessProjection),
]
"""Each users view with its projection, for the users area's wiring."""

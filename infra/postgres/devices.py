"""The push devices in Postgres (``commands.notifications.ports.Devices``, and what
``/me/devices`` lists). One row per user and token: registering the same token
again (a browser re-subscribing on every visit) returns the device already there."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg_pool import ConnectionPool

from commands.notifications.ports import Device
from domain.devices import RegisteredDevice

DDL = """
CREATE SCHEMA IF NOT EXISTS notify;
CREATE TABLE IF NOT EXISTS notify.devices (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    platform text NOT NULL,
    token text NOT NULL,
    endpoint_arn text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, token)
);
"""


class PostgresDevices:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def register(self, device: Device) -> Device:
        return self.enrol(device, datetime.now(UTC))[0]

    def enrol(self, device: Device, at: datetime) -> tuple[Device, RegisteredDevice]:
        """Store the device (or find the same user's with the same token): the
        device kept, and what its owner sees of it."""
        with self._pool.connection() as conn:
            # DO UPDATE (a no-op) rather than DO NOTHING: RETURNING then gives the
            # row already there, in the same statement, whoever inserted it.
            row = conn.execute(
                "INSERT INTO notify.devices "
                "(id, user_id, platform, token, endpoint_arn, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, token) "
                "DO UPDATE SET token = excluded.token "
                "RETURNING id, user_id, platform, token, endpoint_arn, created_at",
                (
                    device.id,
                    device.user_id,
                    device.platform,
                    device.token,
                    device.endpoint_arn,
                    at,
                ),
            ).fetchone()
        assert row is not None
        return _device(row), RegisteredDevice(row[0], row[2], row[5])

    def get(self, device_id: UUID) -> Device | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT id, user_id, platform, token, endpoint_arn FROM notify.devices "
                "WHERE id = %s",
                (device_id,),
            ).fetchone()
        return None if row is None else _device(row)

    def of_user(self, user_id: UUID) -> list[Device]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, user_id, platform, token, endpoint_arn FROM notify.devices "
                "WHERE user_id = %s ORDER BY created_at, id",
                (user_id,),
            ).fetchall()
        return [_device(row) for row in rows]

    def registered(self, user_id: UUID) -> list[RegisteredDevice]:
        """The user's devices as they see them, oldest first."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, platform, created_at FROM notify.devices WHERE user_id = %s "
                "ORDER BY created_at, id",
                (user_id,),
            ).fetchall()
        return [RegisteredDevice(*row) for row in rows]

    def set_endpoint(self, device_id: UUID, endpoint_arn: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE notify.devices SET endpoint_arn = %s WHERE id = %s",
                (endpoint_arn, device_id),
            )

    def remove(self, device_id: UUID, user_id: UUID | None = None) -> bool:
        with self._pool.connection() as conn:
            if user_id is None:
                cursor = conn.execute("DELETE FROM notify.devices WHERE id = %s", (device_id,))
            else:
                cursor = conn.execute(
                    "DELETE FROM notify.devices WHERE id = %s AND user_id = %s",
                    (device_id, user_id),
                )
            removed: int = cursor.rowcount
        return removed > 0

    def forget(self, user_id: UUID, cursor: Cursor[Any]) -> None:
        """Delete the user's devices (erased): their push subscriptions and tokens
        identify them. A mobile device's SNS platform endpoint, which keeps its token
        in SNS, is deleted before, by the push sender (``SnsPushSender.forget``)."""
        cursor.execute("DELETE FROM notify.devices WHERE user_id = %s", (user_id,))


def _device(row: tuple[Any, ...]) -> Device:
    return Device(id=row[0], user_id=row[1], platform=row[2], token=row[3], endpoint_arn=row[4])

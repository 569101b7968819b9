"""The push channel: a delivery's address is a device id; the device's platform picks
the sender (Web Push, or a mobile platform through SNS). A device its push service
no longer knows is removed, so it costs one failed send, not one per notification.
An erased user's devices are forgotten by each platform's sender that keeps
something of them outside the devices table (SNS: its endpoints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from psycopg import Cursor

from commands.notifications.ports import (
    Device,
    DeviceGone,
    Devices,
    Forgetting,
    Outgoing,
    PermanentFailure,
    Sender,
)


def device_of(devices: Devices, address: str) -> Device:
    """The device a push delivery goes to; one removed since is gone."""
    try:
        device = devices.get(UUID(address))
    except ValueError:
        device = None
    if device is None:
        raise DeviceGone("unknown device")
    return device


class PushRouter:
    def __init__(self, senders: Mapping[str, Sender], devices: Devices) -> None:
        self._senders = senders
        self._devices = devices

    def send(self, outgoing: Outgoing) -> str:
        device = device_of(self._devices, outgoing.address)
        sender = self._senders.get(device.platform)
        if sender is None:
            raise PermanentFailure(f"no push sender for platform {device.platform!r}")
        try:
            return sender.send(outgoing)
        except DeviceGone:
            self._devices.remove(device.id)
            raise

    def forget(self, user_id: UUID, cursor: Cursor[Any]) -> None:
        """Before the devices themselves are forgotten: the senders read them."""
        for sender in {id(s): s for s in self._senders.values()}.values():
            if isinstance(sender, Forgetting):
                sender.forget(user_id, cursor)

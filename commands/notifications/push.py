"""The push channel: a delivery's address is a device id; the device's platform picks
the sender (Web Push, or a mobile platform through SNS). A device its push service
no longer knows is removed, so it costs one failed send, not one per notification."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from commands.notifications.ports import (
    Device,
    DeviceGone,
    Devices,
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

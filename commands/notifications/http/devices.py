"""A user's push devices: ``POST /me/devices`` registers a browser's Web Push
subscription or a phone's APNs/FCM token (checked first: ``domain.devices``),
``GET /me/devices`` lists them, ``DELETE /me/devices/{id}`` removes one. The token
is never answered back: a subscription's keys are the browser's to keep."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from commands.http.deps import CurrentUser
from commands.http.parsed_body import ParsedBodyRoute
from commands.notifications.http.deps import Services
from commands.notifications.ports import Device
from domain.devices import MAX_TOKEN, Platform, RegisteredDevice, valid_token
from domain.errors import UnknownEntity

router = APIRouter(prefix="/me/devices", tags=["notifications"], route_class=ParsedBodyRoute)


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Platform
    token: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN)] = Field(
        description="webpush: the PushSubscription as JSON text (endpoint, keys.p256dh, "
        "keys.auth); apns, fcm: the device token"
    )


class DeviceOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: UUID
    platform: Platform
    created_at: datetime


class DeviceList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[DeviceOut]


def _out(device: RegisteredDevice) -> DeviceOut:
    return DeviceOut(id=device.id, platform=Platform(device.platform), created_at=device.created_at)


@router.post("", status_code=201, response_model=DeviceOut)
def register_device(body: DeviceIn, principal: CurrentUser, services: Services) -> DeviceOut:
    """Register a device for push. The same token again answers the device already
    registered (browsers re-subscribe on every visit). A token malformed for its
    platform is refused (422 ``invalid-device``) and nothing is stored."""
    token = valid_token(body.platform, body.token)
    device = Device(
        id=services.new_id(),
        user_id=principal.user_id,
        platform=body.platform.value,
        token=token,
    )
    _, registered = services.devices.enrol(device, services.clock())
    return _out(registered)


@router.get("", response_model=DeviceList)
def my_devices(principal: CurrentUser, services: Services) -> DeviceList:
    """Your devices, oldest first."""
    return DeviceList(items=[_out(d) for d in services.devices.registered(principal.user_id)])


@router.delete("/{device_id}", status_code=204, response_class=Response)
def remove_device(device_id: UUID, principal: CurrentUser, services: Services) -> Response:
    """Stop push to one of your devices. Another user's answers 404, as an unknown
    id does (and stays)."""
    if not services.devices.remove(device_id, principal.user_id):
        raise UnknownEntity("no such device")
    return Response(status_code=204)

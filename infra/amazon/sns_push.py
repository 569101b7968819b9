"""Mobile push (APNs, FCM) through Amazon SNS: a device gets a platform endpoint on
its first notification, kept on the device; an erased user's endpoints are deleted
(``forget``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError
from psycopg import Cursor

from commands.notifications.ports import Device, DeviceGone, Devices, Outgoing, PermanentFailure
from commands.notifications.push import device_of
from infra.amazon.errors import aws_errors

if TYPE_CHECKING:
    from types_boto3_sns.client import SNSClient

_GONE = frozenset({"EndpointDisabled", "NotFound"})
log = logging.getLogger(__name__)


class SnsPushSender:
    def __init__(
        self, client: SNSClient, platform_applications: Mapping[str, str], devices: Devices
    ) -> None:
        """``platform_applications``: a platform (``apns``, ``fcm``) to the ARN of its
        SNS platform application."""
        self._client = client
        self._applications = platform_applications
        self._devices = devices

    def send(self, outgoing: Outgoing) -> str:
        device = device_of(self._devices, outgoing.address)
        endpoint = device.endpoint_arn or self._new_endpoint(device)
        try:
            with aws_errors("SNS", gone=_GONE):
                answer = self._client.publish(
                    TargetArn=endpoint, Message=_payload(outgoing), MessageStructure="json"
                )
        except DeviceGone:
            # SNS hands a disabled endpoint back to a new registration of the same token
            with suppress(ClientError, BotoCoreError):
                self._client.delete_endpoint(EndpointArn=endpoint)
            raise
        return answer["MessageId"]

    def forget(self, user_id: UUID, cursor: Cursor[Any] | None = None) -> None:
        """Delete the platform endpoints of an erased user's devices (ADR 0024): each
        keeps its device's token in SNS. Before the devices are forgotten (the ARNs
        are kept on them); ``cursor`` is not used: SNS is not in the transaction.
        Deleting an endpoint is idempotent. A refusal is logged, not raised: the
        erasure of everything else is not held back by SNS (the endpoint stays, as
        it was before erasures deleted any)."""
        for device in self._devices.of_user(user_id):
            if device.endpoint_arn is None:
                continue
            try:
                self._client.delete_endpoint(EndpointArn=device.endpoint_arn)
            except (ClientError, BotoCoreError):
                log.warning("the SNS endpoint of device %s is left", device.id, exc_info=True)

    def _new_endpoint(self, device: Device) -> str:
        application = self._applications.get(device.platform)
        if application is None:
            raise PermanentFailure(f"no SNS platform application for {device.platform!r}")
        with aws_errors("SNS"):  # a missing application is ours to fix, not the device gone
            endpoint = self._client.create_platform_endpoint(
                PlatformApplicationArn=application, Token=device.token
            )["EndpointArn"]
        self._devices.set_endpoint(device.id, endpoint)
        return endpoint


def _payload(outgoing: Outgoing) -> str:
    content = outgoing.content
    data = {"notification_id": str(outgoing.notification_id), "link": content.link or ""}
    apns = json.dumps({"aps": {"alert": {"title": content.subject, "body": content.text}}, **data})
    fcm = {"notification": {"title": content.subject, "body": content.text}, "data": data}
    return json.dumps(
        {"default": content.text, "GCM": json.dumps(fcm), "APNS": apns, "APNS_SANDBOX": apns}
    )

"""Mobile push (APNs, FCM) through Amazon SNS: a device gets a platform endpoint on
its first notification, kept on the device."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import suppress
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from commands.notifications.ports import Device, DeviceGone, Devices, Outgoing, PermanentFailure
from commands.notifications.push import device_of
from infra.amazon.errors import aws_errors

if TYPE_CHECKING:
    from types_boto3_sns.client import SNSClient

_GONE = frozenset({"EndpointDisabled", "NotFound"})


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

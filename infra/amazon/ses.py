"""Email through Amazon SES (API v2), sent as raw MIME: the same message the SMTP
sender builds, List-Unsubscribe headers included."""

from __future__ import annotations

from typing import TYPE_CHECKING

from commands.notifications.ports import Outgoing
from infra.amazon.errors import aws_errors
from infra.smtp.mime import build_message

if TYPE_CHECKING:
    from types_boto3_sesv2.client import SESV2Client
    from types_boto3_sesv2.type_defs import SendEmailRequestTypeDef


class SesEmailSender:
    def __init__(
        self, client: SESV2Client, sender_address: str, configuration_set: str | None = None
    ) -> None:
        self._client = client
        self._sender = sender_address
        self._configuration_set = configuration_set

    def send(self, outgoing: Outgoing) -> str:
        request: SendEmailRequestTypeDef = {
            "FromEmailAddress": self._sender,
            "Destination": {"ToAddresses": [outgoing.address]},
            "Content": {"Raw": {"Data": build_message(outgoing, self._sender).as_bytes()}},
        }
        if self._configuration_set:  # where SES publishes bounces and complaints
            request["ConfigurationSetName"] = self._configuration_set
        with aws_errors("SES"):
            return self._client.send_email(**request)["MessageId"]

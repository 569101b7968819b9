"""SMS through Amazon SNS, transactional (the route for one-to-one notices)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from commands.notifications.ports import Outgoing, PermanentFailure
from infra.amazon.errors import aws_errors

if TYPE_CHECKING:
    from types_boto3_sns.client import SNSClient
    from types_boto3_sns.type_defs import MessageAttributeValueTypeDef

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
MAX_BYTES = 1600  # SNS refuses a longer SMS
# delivered on the reliable route even where promotional traffic is throttled
_TRANSACTIONAL: dict[str, MessageAttributeValueTypeDef] = {
    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
}


class SnsSmsSender:
    def __init__(self, client: SNSClient) -> None:
        self._client = client

    def send(self, outgoing: Outgoing) -> str:
        number, text = outgoing.address, outgoing.content.text
        if not E164.fullmatch(number):
            raise PermanentFailure("not an E.164 phone number")
        if len(text.encode()) > MAX_BYTES:
            raise PermanentFailure(f"message too long (over {MAX_BYTES} bytes)")
        with aws_errors("SNS"):
            # SNS accepts a publish to a number that replied STOP and drops it silently
            opted_out = self._client.check_if_phone_number_is_opted_out(phoneNumber=number)
            if opted_out["isOptedOut"]:
                raise PermanentFailure("opted-out")
            answer = self._client.publish(
                PhoneNumber=number, Message=text, MessageAttributes=_TRANSACTIONAL
            )
        return answer["MessageId"]

"""SES bounce and complaint feedback, as Amazon SNS delivers it to our HTTPS endpoint.

SES publishes to an SNS topic; SNS POSTs an envelope (``Type`` Notification,
SubscriptionConfirmation or UnsubscribeConfirmation) whose ``Message`` is the SES
notification as a JSON string. Every envelope is verified (signature, certificate,
topic) before anything is done with it, so a forged bounce can never silence an
address. Then:

- a permanent bounce suppresses every bounced recipient for all mail (sending to it
  again only hurts the sender's reputation);
- a transient or undetermined bounce changes nothing (the mailbox may come back);
- a complaint suppresses the complained recipients for marketing only: the order
  mails they still need keep going (a ``not-spam`` report retracts, so it changes
  nothing);
- anything else SES sends (deliveries) is acknowledged and ignored.

Only the parsing and the decisions are here; the signature check and the HTTP GET
that confirms a subscription are the adapter's (``infra.amazon.sns_signature``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from enum import StrEnum
from typing import Any, Protocol

from commands.notifications.ports import Suppressions
from domain.refusals import Refused

log = logging.getLogger(__name__)


class MessageType(StrEnum):
    NOTIFICATION = "Notification"
    SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
    UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"


_REQUIRED = (
    "Type",
    "MessageId",
    "TopicArn",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
)
_SUBSCRIPTION_REQUIRED = ("SubscribeURL", "Token")


class MalformedEnvelope(Refused):
    """Not an SNS envelope (or an SES notification we cannot read): nothing changed."""

    code = "malformed-sns-message"


class UntrustedMessage(Refused):
    """The signature, its certificate or the topic does not check out: nothing changed."""

    status = 403
    code = "untrusted-sns-message"


class SnsUnavailable(Refused):
    """SNS could not be reached (the signing certificate, the subscription
    confirmation): answered 503 so that SNS delivers the message again."""

    status = 503
    code = "sns-unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "5"})


@dataclass(frozen=True)
class Envelope:
    """An SNS HTTP(S) message; ``fields`` holds every field as sent, the signed
    canonical string is built from them."""

    type: MessageType
    message_id: str
    topic_arn: str
    message: str
    signature_version: str
    signature: str
    signing_cert_url: str
    fields: Mapping[str, str]

    @property
    def subscribe_url(self) -> str:
        return self.fields.get("SubscribeURL", "")


class SnsMessages(Protocol):
    """What the endpoint needs of SNS."""

    def verify(self, envelope: Envelope) -> None:
        """Raise ``UntrustedMessage`` unless SNS signed it for an allowed topic,
        ``SnsUnavailable`` when the certificate cannot be fetched."""

    def confirm_subscription(self, envelope: Envelope) -> None:
        """GET the SubscribeURL (an SNS host only); ``SnsUnavailable`` on failure."""


@dataclass(frozen=True)
class Suppressed:
    address: str
    marketing_only: bool
    reason: str


@dataclass(frozen=True)
class Handled:
    """What one envelope came to: the suppressions made, whether it confirmed a
    subscription, and a word for the log."""

    outcome: str
    suppressed: tuple[Suppressed, ...] = ()
    confirmed: bool = False


def parse_envelope(body: bytes) -> Envelope:
    """The SNS envelope in a request body (SNS sends JSON as ``text/plain``)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are both
        raise MalformedEnvelope("the body is not a JSON SNS message") from None
    if not isinstance(value, dict):
        raise MalformedEnvelope("an SNS message is a JSON object")
    fields = {k: v for k, v in value.items() if isinstance(v, str)}
    try:
        kind = MessageType(fields.get("Type", ""))
    except ValueError:
        raise MalformedEnvelope("Type is not an SNS message type") from None
    required: tuple[str, ...] = _REQUIRED
    if kind is not MessageType.NOTIFICATION:
        required = (*_REQUIRED, *_SUBSCRIPTION_REQUIRED)
    missing = [name for name in required if not fields.get(name)]
    if missing:
        raise MalformedEnvelope(f"the SNS message lacks {', '.join(missing)}")
    return Envelope(
        type=kind,
        message_id=fields["MessageId"],
        topic_arn=fields["TopicArn"],
        message=fields["Message"],
        signature_version=fields["SignatureVersion"],
        signature=fields["Signature"],
        signing_cert_url=fields["SigningCertURL"],
        fields=fields,
    )


def handle(body: bytes, sns: SnsMessages, suppressions: Suppressions) -> Handled:
    """Parse, verify, then act; a refusal (raised) has changed nothing."""
    envelope = parse_envelope(body)
    sns.verify(envelope)
    if envelope.type is MessageType.SUBSCRIPTION_CONFIRMATION:
        sns.confirm_subscription(envelope)
        log.info("confirmed the SNS subscription to %s", envelope.topic_arn)
        return Handled("subscription confirmed", confirmed=True)
    if envelope.type is MessageType.UNSUBSCRIBE_CONFIRMATION:
        log.warning("unsubscribed from %s: feedback stops", envelope.topic_arn)
        return Handled("unsubscribed")
    decided = decide(envelope.message)
    for s in decided:  # validated whole first: a malformed notification suppresses none
        suppressions.suppress(s.address, s.reason, marketing_only=s.marketing_only)
    if decided:  # no addresses in the log: they are personal data
        log.info("SNS %s: %d suppressed (%s)", envelope.message_id, len(decided), decided[0].reason)
    return Handled(f"{len(decided)} suppressed", suppressed=decided)


def decide(message: str) -> tuple[Suppressed, ...]:
    """The suppressions an SES notification (``Message``, a JSON string) calls for."""
    try:
        notification = json.loads(message)
    except (ValueError, RecursionError):
        raise MalformedEnvelope("the Message is not an SES notification") from None
    if not isinstance(notification, dict):
        raise MalformedEnvelope("the Message is not an SES notification")
    # notificationType from an identity's notification topic, eventType from a
    # configuration set's event destination: the same shapes otherwise.
    kind = notification.get("notificationType") or notification.get("eventType")
    if kind == "Bounce":
        bounce = _object(notification, "bounce")
        if bounce.get("bounceType") != "Permanent":
            return ()
        reason = f"bounce: Permanent/{bounce.get('bounceSubType', '')}"
        addresses = _addresses(bounce, "bouncedRecipients")
        return tuple(Suppressed(a, False, reason) for a in addresses)
    if kind == "Complaint":
        complaint = _object(notification, "complaint")
        feedback_type = complaint.get("complaintFeedbackType")
        if feedback_type == "not-spam":
            return ()
        reason = f"complaint: {feedback_type or 'unspecified'}"
        addresses = _addresses(complaint, "complainedRecipients")
        return tuple(Suppressed(a, True, reason) for a in addresses)
    return ()  # Delivery, Send, Open and the like: nothing to suppress


def _object(notification: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = notification.get(name)
    if not isinstance(value, dict):
        raise MalformedEnvelope(f"the SES notification has no {name} object")
    return value


def _addresses(details: Mapping[str, Any], name: str) -> list[str]:
    recipients = details.get(name)
    if not isinstance(recipients, list) or not recipients:
        raise MalformedEnvelope(f"the SES notification has no {name}")
    addresses: list[str] = []
    for recipient in recipients:
        raw = recipient.get("emailAddress") if isinstance(recipient, dict) else None
        # SES may give the DSN's Final-Recipient with a display name around it.
        address = parseaddr(raw)[1] if isinstance(raw, str) else ""
        if "@" not in address:
            raise MalformedEnvelope(f"a recipient in {name} has no email address")
        addresses.append(address.lower())
    return addresses

"""Which adapter delivers each channel, stores the inbox and queues the deliveries,
as the settings choose: the local mailbox and Postgres by default (a laptop needs
nothing else), SES or SMTP, SNS, Web Push, SQS and DynamoDB when configured.

The AWS and Web Push adapters are imported in the branches that choose them: boto3,
botocore and pywebpush (with aiohttp) cost every process over a second of start-up,
and the default uses none of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from commands.notifications.in_app import InAppSender
from commands.notifications.ports import Devices, Sender
from commands.notifications.push import PushRouter
from domain.notifications import Channel
from infra.postgres.inbox import PostgresInbox, SignalledInbox
from infra.postgres.mailbox import PostgresMailbox
from infra.postgres.notifications import PostgresDeliveryQueue
from infra.settings import Settings
from infra.smtp.sender import SmtpEmailSender
from infra.wiring.shared import Pools
from projections.notifications.inbox import Inbox

if TYPE_CHECKING:
    from infra.amazon.sqs_dispatch import SqsDispatcher
    from infra.amazon.sqs_queue import SqsDeliveryQueue

DeliveryQueues: TypeAlias = "PostgresDeliveryQueue | SqsDeliveryQueue"


def aws_client(settings: Settings, service: str) -> Any:
    import boto3

    return boto3.client(  # type: ignore[call-overload]
        service, region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )


def inbox_store(settings: Settings, pools: Pools) -> Inbox:
    if settings.notify_inbox == "dynamodb":
        from infra.amazon.dynamodb_inbox import DynamoDBInbox

        table = DynamoDBInbox(aws_client(settings, "dynamodb"), settings.dynamodb_inbox_table)
        return SignalledInbox(table, pools.pool)  # the live streams listen in Postgres
    return PostgresInbox(pools.pool)


def delivery_queue(settings: Settings, pools: Pools) -> tuple[DeliveryQueues, SqsDispatcher | None]:
    """The queue, and with SQS the dispatcher that feeds it from the deliveries table."""
    if settings.notify_queue == "sqs":
        from infra.amazon.sqs_dispatch import SqsDispatcher
        from infra.amazon.sqs_queue import SqsDeliveryQueue

        sqs = aws_client(settings, "sqs")
        return (
            SqsDeliveryQueue(sqs, settings.sqs_queue_urls),
            SqsDispatcher(pools.pool, sqs, settings.sqs_queue_urls),
        )
    return PostgresDeliveryQueue(pools.pool, pools.conninfo), None


def senders(
    settings: Settings, mailbox: PostgresMailbox, inbox: Inbox, devices: Devices
) -> dict[Channel, Sender]:
    """A sender per channel this shop delivers on (a channel set ``off`` has none)."""
    chosen: dict[Channel, Sender] = {
        Channel.EMAIL: _email(settings, mailbox),
        Channel.IN_APP: InAppSender(inbox),
    }
    match settings.notify_sms:
        case "sns":
            from infra.amazon.sns_sms import SnsSmsSender

            chosen[Channel.SMS] = SnsSmsSender(aws_client(settings, "sns"))
        case "mailbox":
            chosen[Channel.SMS] = mailbox
    push = _push(settings, mailbox, devices)
    if push is not None:
        chosen[Channel.PUSH] = push
    return chosen


def _email(settings: Settings, mailbox: PostgresMailbox) -> Sender:
    match settings.notify_email:
        case "ses":
            from infra.amazon.ses import SesEmailSender

            return SesEmailSender(
                aws_client(settings, "sesv2"), settings.ses_sender, settings.ses_configuration_set
            )
        case "smtp":
            password = settings.smtp_password
            return SmtpEmailSender(
                settings.smtp_host,
                settings.smtp_port,
                settings.smtp_sender,
                username=settings.smtp_username,
                password=password.get_secret_value() if password else None,
                starttls=settings.smtp_starttls,
            )
    return mailbox


def _push(settings: Settings, mailbox: PostgresMailbox, devices: Devices) -> Sender | None:
    """By the device's platform: Web Push whenever a VAPID key is set, the mobile
    platforms through SNS; the mailbox takes every push in the embedded default."""
    if settings.notify_push == "mailbox":
        return mailbox
    routes: dict[str, Sender] = {}
    if settings.vapid_private_key is not None:
        from infra.webpush.sender import WebPushSender  # pywebpush brings aiohttp

        key = settings.vapid_private_key.get_secret_value()
        routes["webpush"] = WebPushSender(devices, key, settings.vapid_subject)
    if settings.notify_push == "sns":
        from infra.amazon.sns_push import SnsPushSender

        sns = SnsPushSender(
            aws_client(settings, "sns"), settings.sns_platform_applications, devices
        )
        routes |= dict.fromkeys(settings.sns_platform_applications, sns)
    return PushRouter(routes, devices) if routes else None

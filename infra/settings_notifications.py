"""The notification settings (docs/adr/0017-notifications.md): a channel per kind of
delivery and what each provider needs. Part of ``infra.settings.Settings``, which
reads them from the environment with the others."""

from __future__ import annotations

import json
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from domain.notifications import Channel


class NotificationSettings(BaseSettings):
    notify_email: Literal["mailbox", "smtp", "ses"] = Field(
        default="mailbox", description="mailbox: the local table `shop mailbox` shows"
    )
    notify_sms: Literal["mailbox", "sns", "off"] = "mailbox"
    notify_push: Literal["mailbox", "sns", "off"] = Field(
        default="mailbox",
        description="sns: mobile devices through SNS platform endpoints; Web Push devices "
        "go through their push service whenever SHOP_VAPID_PRIVATE_KEY is set",
    )
    notify_inbox: Literal["postgres", "dynamodb"] = "postgres"
    notify_queue: Literal["postgres", "sqs"] = Field(
        default="postgres", description="postgres: the deliveries table (FOR UPDATE SKIP LOCKED)"
    )
    notify_max_attempts: int = Field(default=6, ge=1, le=20, description="per delivery")
    aws_region: str = "eu-west-1"
    aws_endpoint_url: str | None = Field(
        default=None, description="another AWS endpoint for every service (tests: moto)"
    )
    ses_sender: str = Field(default="shop@example.com", description="the From address")
    ses_configuration_set: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_sender: str = "shop@example.com"
    sns_topic_arn_ses_feedback: str | None = Field(
        default=None, description="the SNS topic SES publishes bounces and complaints to"
    )
    sns_platform_applications: dict[str, str] = Field(
        default_factory=dict, description='JSON: {"apns": ARN, "fcm": ARN}'
    )
    sqs_queue_urls: dict[Channel, str] = Field(
        default_factory=dict, description='JSON: a queue URL per channel, {"email": URL, ...}'
    )
    dynamodb_inbox_table: str = "eventshop-inbox"
    vapid_subject: str = Field(
        default="mailto:shop@example.com", description="the contact push services see"
    )
    vapid_private_key: SecretStr | None = Field(
        default=None, description="base64url VAPID key; set: Web Push devices get push"
    )

    @field_validator("sns_platform_applications", "sqs_queue_urls", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        """Given as JSON text (the environment's form) as well as an object."""
        return json.loads(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sqs_has_every_queue(self) -> Self:
        missing = sorted(set(Channel) - set(self.sqs_queue_urls))
        if self.notify_queue == "sqs" and missing:
            raise ValueError(f"SHOP_NOTIFY_QUEUE=sqs needs SHOP_SQS_QUEUE_URLS for {missing}")
        return self

"""Notification settings: production refuses the local mailbox on any channel (it would
keep every reset link where an admin can read it), the SQS queue needs a queue per
channel, and the JSON settings read from the environment's text."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.notifications import Channel
from infra.settings import Settings
from tests.support.production import PRODUCTION


@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_production_refuses_the_mailbox_on_any_channel(channel: str) -> None:
    with pytest.raises(ValidationError, match=f"SHOP_NOTIFY_{channel.upper()}"):
        Settings(**PRODUCTION | {f"notify_{channel}": "mailbox"})


def test_production_takes_real_channels_or_none() -> None:
    Settings(**PRODUCTION)
    Settings(**PRODUCTION | {"notify_email": "smtp", "notify_sms": "off", "notify_push": "off"})


def test_the_embedded_default_is_the_mailbox_everywhere() -> None:
    settings = Settings()
    assert (settings.notify_email, settings.notify_sms, settings.notify_push) == ("mailbox",) * 3
    assert (settings.notify_queue, settings.notify_inbox) == ("postgres", "postgres")


def test_sqs_needs_a_queue_for_every_channel() -> None:
    urls = {channel: f"https://sqs.example/{channel}" for channel in Channel}
    with pytest.raises(ValidationError, match="SHOP_SQS_QUEUE_URLS"):
        Settings(notify_queue="sqs", sqs_queue_urls={Channel.EMAIL: urls[Channel.EMAIL]})
    settings = Settings(notify_queue="sqs", sqs_queue_urls=urls)
    assert settings.sqs_queue_urls[Channel.SMS] == urls[Channel.SMS]


def test_json_settings_come_as_the_environments_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SHOP_SNS_PLATFORM_APPLICATIONS", '{"fcm": "arn:aws:sns:eu-west-1:1:app/GCM/x"}'
    )
    assert Settings().sns_platform_applications == {"fcm": "arn:aws:sns:eu-west-1:1:app/GCM/x"}
    for bad in ("{not json", {"fax": "https://sqs.example/fax"}):  # the second: no channel
        given: Any = bad
        with pytest.raises(ValidationError):
            Settings(sqs_queue_urls=given)

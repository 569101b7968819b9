"""The templates as shipped: every kind renders in every locale on every channel its
rules allow, from the context the policy gives (the samples); HTML escapes what a
customer typed, the plain parts do not; money and dates follow the locale; a
template naming a value its context lacks fails instead of sending a blank."""

from __future__ import annotations

import pytest
from jinja2 import TemplateError
from typer.testing import CliRunner

from commands.notifications.rendering import Renderer
from commands.notifications.samples import sample_context
from domain.notifications import LOCALES, RULES, Channel, Kind
from infra.entrypoints.cli import app

RENDERER = Renderer()
CASES = [
    (kind, locale, channel)
    for kind in Kind
    for locale in LOCALES
    for channel in sorted(RULES[kind].channels, key=list(Channel).index)
]


def plain(text: str) -> str:
    """Babel separates amounts and symbols with no-break spaces in some locales."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


@pytest.mark.parametrize(("kind", "locale", "channel"), CASES, ids=lambda v: str(v))
def test_every_kind_renders_in_every_locale_on_its_channels(
    kind: Kind, locale: str, channel: Channel
) -> None:
    content = RENDERER.render(kind, channel, locale, sample_context(kind))
    assert content.text.strip()
    if channel is not Channel.SMS:
        assert content.subject.strip()
        assert "\n" not in content.subject
    if channel is Channel.EMAIL:
        assert content.html.startswith("<!DOCTYPE html>")
        assert f'lang="{locale}"' in content.html
    if channel is Channel.SMS:
        assert len(content.text) <= 320  # two SMS segments at most


def test_every_kind_has_a_template_in_every_locale() -> None:
    assert len(CASES) == sum(len(RULES[kind].channels) for kind in Kind) * len(LOCALES)


def test_html_escapes_what_a_customer_typed_and_text_keeps_it() -> None:
    context = sample_context(Kind.ORDER_CANCELLED) | {
        "name": '<script>alert("x")</script>',
        "reason": "<b>changed my mind</b> & more",
    }
    content = RENDERER.render(Kind.ORDER_CANCELLED, Channel.EMAIL, "en", context)
    assert "<script>" not in content.html
    assert "&lt;script&gt;" in content.html
    assert "&lt;b&gt;changed my mind&lt;/b&gt; &amp; more" in content.html
    assert '<script>alert("x")</script>' in content.text


def test_money_and_dates_follow_the_locale() -> None:
    context = sample_context(Kind.ORDER_CONFIRMED)
    english = RENDERER.render(Kind.ORDER_CONFIRMED, Channel.EMAIL, "en", context)
    german = RENDERER.render(Kind.ORDER_CONFIRMED, Channel.EMAIL, "de", context)
    assert "€1,259.00" in plain(english.subject)
    assert "1.259,00 €" in plain(german.subject)
    reset = sample_context(Kind.RESET_PASSWORD) | {"time_zone": "Europe/Berlin"}
    # 10:30 UTC is 11:30 in Berlin in December.
    assert "11:30" in RENDERER.render(Kind.RESET_PASSWORD, Channel.EMAIL, "de", reset).text


def test_the_link_mails_keep_what_people_and_tests_follow() -> None:
    context = sample_context(Kind.VERIFY_EMAIL)
    content = RENDERER.render(Kind.VERIFY_EMAIL, Channel.EMAIL, "en", context)
    assert content.subject == "Verify your email address"
    assert context["link"] in content.text
    assert f"Or send this token to the API: {context['token']}" in content.text
    assert content.link == context["link"]


def test_an_unknown_locale_falls_back_to_english() -> None:
    context = sample_context(Kind.ORDER_SHIPPED)
    assert RENDERER.render(Kind.ORDER_SHIPPED, Channel.SMS, "fr", context) == (
        RENDERER.render(Kind.ORDER_SHIPPED, Channel.SMS, "en", context)
    )


def test_a_missing_value_fails_to_render() -> None:
    context = dict(sample_context(Kind.ORDER_SHIPPED))
    del context["tracking_number"]
    with pytest.raises(TemplateError):
        RENDERER.render(Kind.ORDER_SHIPPED, Channel.EMAIL, "en", context)


def test_a_channel_the_kind_does_not_use_has_no_part() -> None:
    with pytest.raises(KeyError):
        RENDERER.render(Kind.VERIFY_EMAIL, Channel.SMS, "en", sample_context(Kind.VERIFY_EMAIL))


def test_preview_renders_a_kind_without_a_database() -> None:
    result = CliRunner().invoke(
        app, ["notifications", "preview", "order_shipped", "--locale", "de"]
    )
    assert result.exit_code == 0, result.output
    assert "Ihre Bestellung ist unterwegs" in result.output
    assert "JD014600006281" in result.output
    refused = CliRunner().invoke(
        app, ["notifications", "preview", "order_shipped", "--locale", "fr"]
    )
    assert refused.exit_code == 2
    wrong = CliRunner().invoke(
        app, ["notifications", "preview", "verify_email", "--channel", "sms"]
    )
    assert wrong.exit_code == 2

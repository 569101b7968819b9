"""Templates to content: one Jinja2 file per kind and locale
(``templates/<locale>/<kind>.jinja``) holding a block per channel part, which a
person can edit without touching code.

- Blocks: ``email_subject``, ``email_text``, ``email_html``, ``sms``,
  ``push_title``, ``push_body``, ``in_app_title``, ``in_app_body``. A kind defines
  those of the channels it may use (``domain.notifications.RULES``).
- The HTML body is rendered with autoescape on (a customer's name or an address
  field cannot inject markup) and wrapped in the locale's ``_layout.html.jinja``;
  the other parts are plain text and are not escaped.
- ``StrictUndefined``: a template naming a value its context lacks fails to render
  (the delivery fails with the reason), instead of sending a blank.
- Money, dates and times are formatted for the user's locale and time zone with
  Babel: ``{{ total | money }}``, ``{{ expires_at | datetime }}``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from commands.notifications.ports import Content
from domain.notifications import DEFAULT_LOCALE, DEFAULT_TIME_ZONE, LOCALES, Channel, Kind

TEMPLATES = Path(__file__).parent / "templates"

_PARTS: Mapping[Channel, tuple[str, str, str | None]] = {
    Channel.EMAIL: ("email_subject", "email_text", "email_html"),
    Channel.SMS: ("", "sms", None),
    Channel.PUSH: ("push_title", "push_body", None),
    Channel.IN_APP: ("in_app_title", "in_app_body", None),
}
"""Per channel: the blocks that give Content's subject, text and html."""


class Renderer:
    def __init__(self, directory: Path | None = None) -> None:
        loader = FileSystemLoader(directory or TEMPLATES)
        options: dict[str, Any] = {
            "loader": loader,
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            # Compiled once: no file check per message (a template edit shows after a
            # restart; `shop notifications preview` reads the files as they are).
            "auto_reload": False,
        }
        self._text = Environment(autoescape=False, **options)  # noqa: S701 - plain text parts
        self._html = Environment(autoescape=True, **options)
        for env in (self._text, self._html):
            env.filters.update(money=_money, datetime=_datetime, date=_date, address=_address)

    def render(
        self, kind: Kind, channel: Channel, locale: str, context: Mapping[str, Any]
    ) -> Content:
        """``channel``'s parts of ``kind`` in ``locale`` (the default locale's
        template when the locale has none). Raises ``KeyError`` for a part the
        template lacks and ``jinja2.TemplateError`` for one that cannot render."""
        locale = locale if locale in LOCALES else DEFAULT_LOCALE
        values = {"time_zone": DEFAULT_TIME_ZONE, **context, "locale": locale}
        name = f"{locale}/{kind.value}.jinja"
        subject_block, text_block, html_block = _PARTS[channel]
        text_template = self._text.get_template(name)
        subject = _block(text_template, subject_block, values).strip() if subject_block else ""
        text = _block(text_template, text_block, values).strip() + "\n"
        html = ""
        if html_block:
            body = _block(self._html.get_template(name), html_block, values)
            layout = self._html.get_template(f"{locale}/_layout.html.jinja")
            html = layout.render(values | {"subject": subject, "body": Markup(body)})  # noqa: S704 - autoescaped above
        if channel is not Channel.EMAIL:
            text = text.strip()
        link = context.get("link")
        return Content(subject, text, html, link if isinstance(link, str) else None)


def _block(template: Template, block: str, values: Mapping[str, Any]) -> str:
    render = template.blocks[block]  # KeyError: the template has no such part
    return "".join(render(template.new_context(dict(values))))


@pass_context
def _money(context: Context, value: Mapping[str, str]) -> str:
    return format_currency(Decimal(value["amount"]), value["currency"], locale=context["locale"])


def _moment(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@pass_context
def _datetime(context: Context, value: str | datetime) -> str:
    zone = ZoneInfo(context["time_zone"])
    return format_datetime(_moment(value), "medium", tzinfo=zone, locale=context["locale"])


@pass_context
def _date(context: Context, value: str | datetime) -> str:
    local = _moment(value).astimezone(ZoneInfo(context["time_zone"]))
    return format_date(local, "long", locale=context["locale"])


def _address(value: Mapping[str, str]) -> list[str]:
    """A shipping address's lines, in the order the storefront gave them."""
    return [line for line in value.values() if line]

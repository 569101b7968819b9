"""The pages the verification and reset mails link to (``/verify-email`` and
``/reset-password``, as commands/users/emails.py builds them), for a person's browser.

A GET only shows a form: mail scanners fetch links, so it must change nothing. The
form posts to the same path, which runs the same commands as the JSON API and
answers a page saying what happened. The pages are self-contained: no script, no
other request; every value shown is escaped."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from html import escape
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from commands.http.parsed_body import ParsedBodyRoute
from commands.users.http.deps import Services
from commands.users.passwords import MAX_LENGTH, MIN_LENGTH
from domain.errors import AccountInactive, DomainError
from domain.refusals import Refused

# Pages for people, not part of the API.
router = APIRouter(include_in_schema=False, route_class=ParsedBodyRoute)

VERIFY_PATH = "/verify-email"
RESET_PATH = "/reset-password"
FORM_TYPE = "application/x-www-form-urlencoded"
# What TokenCodec.link_token makes: two UUIDs and a base64url MAC, dot-separated.
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,300}")
_MAX_FIELDS = 3  # the reset form's; a form with more is not ours

_STYLE = (
    "body{font:1.0625rem/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;"
    "padding:0 1rem;color:#1a1a1a;background:#fff}"
    "label{display:block;margin-top:1rem;font-weight:600}"
    "input{display:block;width:100%;box-sizing:border-box;font:inherit;padding:.5rem;"
    "margin-top:.25rem}"
    "button{font:inherit;margin-top:1.5rem;padding:.6rem 1.2rem}"
    ".error{border-left:4px solid #b00020;padding-left:.75rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_HEADERS = {
    # The token is in the address: kept out of caches (and, as every answer is, of
    # any Referer: infra/entrypoints/response_edge.py).
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_BAD_LINK = (
    "This link is incomplete or damaged. Open the whole link from the mail, or ask for a new one."
)


class _FormRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@router.get(VERIFY_PATH, response_class=HTMLResponse)
def verify_email_page(token: str = "") -> HTMLResponse:
    if not _TOKEN.fullmatch(token):
        return _message("This link cannot be used", _BAD_LINK, 400)
    return _verify_form(token)


@router.post(VERIFY_PATH, response_class=HTMLResponse)
async def verify_email(request: Request, services: Services) -> HTMLResponse:
    try:
        fields = await _form(request)
        token = _token(fields)
    except _FormRefused as refused:
        return _message("This link cannot be used", refused.detail, refused.status)
    failure = await _run(services.users.verify_email, token)
    if failure is not None:
        status, detail = failure
        return _message("Your address is not verified", detail, status)
    return _message("Your address is verified", "You can now log in.", 200)


@router.get(RESET_PATH, response_class=HTMLResponse)
def reset_password_page(token: str = "") -> HTMLResponse:
    if not _TOKEN.fullmatch(token):
        return _message("This link cannot be used", _BAD_LINK, 400)
    return _reset_form(token)


@router.post(RESET_PATH, response_class=HTMLResponse)
async def reset_password(request: Request, services: Services) -> HTMLResponse:
    try:
        fields = await _form(request)
        token = _token(fields)
    except _FormRefused as refused:
        return _message("This link cannot be used", refused.detail, refused.status)
    password, confirmation = fields.get("new_password", ""), fields.get("confirmation", "")
    if not password:
        return _reset_form(token, "Choose a new password.", 422)
    if password != confirmation:
        return _reset_form(token, "The two passwords differ: type the same one twice.", 422)
    failure = await _run(services.users.reset_password, token, password)
    if failure is None:
        return _message(
            "Your password is changed",
            "You can now log in with it. Every session was signed out.",
            200,
        )
    status, detail = failure
    if status == 422:  # refused by the strength policy: the link still works
        return _reset_form(token, detail, status)
    return _message("Your password is not changed", detail, status)


async def _run(command: Callable[..., Any], *args: str) -> tuple[int, str] | None:
    """Runs the command (argon2 and the event store block: off the event loop); the
    status and explanation of a refusal, None when it was done."""
    try:
        await run_in_threadpool(command, *args)
    except Refused as refused:
        return refused.status, refused.detail
    except DomainError as error:  # the link is used, expired or not genuine
        return (403 if isinstance(error, AccountInactive) else 400), str(error)
    return None


async def _form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form, each given once, all valid UTF-8."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise _FormRefused(415, "Send this form from its page.")
    try:
        pairs = parse_qs(
            (await request.body()).decode(),
            keep_blank_values=True,
            strict_parsing=True,
            max_num_fields=_MAX_FIELDS,
            errors="strict",
        )
    except ValueError as error:  # also UnicodeDecodeError
        raise _FormRefused(400, "This form was not sent whole. Send it again.") from error
    if any(len(values) != 1 for values in pairs.values()):
        raise _FormRefused(400, "This form was not sent whole. Send it again.")
    return {name: values[0] for name, values in pairs.items()}


def _token(fields: dict[str, str]) -> str:
    token = fields.get("token", "")
    if not _TOKEN.fullmatch(token):
        raise _FormRefused(400, _BAD_LINK)
    return token


def _verify_form(token: str) -> HTMLResponse:
    return _page(
        "Verify your email address",
        "<p>Confirm that this address is yours to finish creating your account.</p>"
        + _form_html(VERIFY_PATH, token, "", "Verify my address"),
        200,
    )


def _reset_form(token: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    hint = f"{MIN_LENGTH} to {MAX_LENGTH} characters, not easy to guess."
    fields = (
        '<label for="new_password">New password</label>'
        '<input id="new_password" name="new_password" type="password" required '
        f'minlength="{MIN_LENGTH}" maxlength="{MAX_LENGTH}" autocomplete="new-password" '
        'aria-describedby="hint">'
        f'<p id="hint">{escape(hint)}</p>'
        '<label for="confirmation">The same password again</label>'
        '<input id="confirmation" name="confirmation" type="password" required '
        f'minlength="{MIN_LENGTH}" maxlength="{MAX_LENGTH}" autocomplete="new-password">'
    )
    alert = "" if error is None else f'<p class="error" role="alert">{escape(error)}</p>'
    return _page(
        "Choose a new password",
        alert + _form_html(RESET_PATH, token, fields, "Set my new password"),
        status,
    )


def _form_html(action: str, token: str, fields: str, button: str) -> str:
    return (
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="token" value="{escape(token)}">'
        f'{fields}<button type="submit">{escape(button)}</button></form>'
    )


def _message(title: str, text: str, status: int) -> HTMLResponse:
    return _page(title, f"<p>{escape(text)}</p>", status)


def _page(title: str, body: str, status: int) -> HTMLResponse:
    """A whole page; ``body`` is markup made of escaped values only."""
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)} · eventshop</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>",
        status_code=status,
        headers=_HEADERS,
    )

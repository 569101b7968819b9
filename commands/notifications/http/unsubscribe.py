"""The link of a marketing mail's ``List-Unsubscribe`` (``commands.notifications.unsubscribe``).

- ``POST /notifications/unsubscribe?token=`` with the body
  ``List-Unsubscribe=One-Click`` (RFC 8058: form-urlencoded or multipart) is the
  mail provider's one click: the address stops getting marketing mail (account and
  order mail still go). Done again, it changes nothing more.
- ``GET`` of the same link, a person opening it, shows a page with a button that
  makes that POST. A GET changes nothing: mail scanners fetch links.
- A token that is not genuine is refused, 400 problem+json, and changes nothing.

The pages are self-contained (no script, no other request), every value escaped."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html import escape
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from commands.http.parsed_body import ParsedBodyRoute
from commands.notifications.http.deps import Services
from commands.notifications.unsubscribe import ONE_CLICK, UNSUBSCRIBE_PATH
from domain.refusals import Refused

# For mail providers and people's browsers, not part of the API.
router = APIRouter(include_in_schema=False, route_class=ParsedBodyRoute)

REASON = "unsubscribed"
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
_HEADERS = {
    # The token is in the address: kept out of caches (and, as every answer is, of
    # any Referer: infra/entrypoints/response_edge.py).
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


class NotOneClick(Refused):
    """A POST to the link without RFC 8058's ``List-Unsubscribe=One-Click`` body."""

    status = 400
    code = "not-one-click"


@router.get(UNSUBSCRIBE_PATH, response_class=HTMLResponse)
def unsubscribe_page(services: Services, token: str = "") -> HTMLResponse:
    address = services.signer.address(token)  # InvalidToken: 400
    action = f"{UNSUBSCRIBE_PATH}?token={quote(token, safe='')}"
    return _page(
        "Unsubscribe from marketing mail",
        f"<p>Stop marketing mail to <strong>{escape(address)}</strong>? Mail about your "
        "account and your orders still comes.</p>"
        f'<form method="post" action="{escape(action)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


@router.post(UNSUBSCRIBE_PATH, response_class=HTMLResponse)
async def unsubscribe(request: Request, services: Services, token: str = "") -> HTMLResponse:
    address = services.signer.address(token)  # InvalidToken: 400
    content_type = request.headers.get("content-type", "")
    if not is_one_click(content_type, await request.body()):
        raise NotOneClick(f"send the body {ONE_CLICK}, form-encoded")
    await run_in_threadpool(services.suppressions.suppress, address, REASON, True)
    return _page(
        "You are unsubscribed",
        f"<p>No more marketing mail goes to <strong>{escape(address)}</strong>.</p>",
    )


def is_one_click(content_type: str, body: bytes) -> bool:
    """The body RFC 8058 says the POST carries: ``List-Unsubscribe=One-Click``,
    urlencoded or as ``multipart/form-data``."""
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == _FORM:
        try:
            fields = parse_qs(body.decode(), strict_parsing=True, max_num_fields=5)
        except ValueError:  # also UnicodeDecodeError
            return False
        return fields.get("List-Unsubscribe") == ["One-Click"]
    if media_type == _MULTIPART:
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        if not isinstance(message, EmailMessage) or not message.is_multipart():
            return False
        return any(
            part.get_param("name", header="content-disposition") == "List-Unsubscribe"
            and str(part.get_payload()).strip() == "One-Click"
            for part in message.iter_parts()
            if isinstance(part, EmailMessage)
        )
    return False


def _page(title: str, body: str) -> HTMLResponse:
    """A whole page; ``body`` is markup made of escaped values only."""
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)} · eventshop</title></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>",
        headers=_HEADERS,
    )

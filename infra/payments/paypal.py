"""The PayPal adapter: the Orders v2 and Payments v2 REST APIs through httpx.

- OAuth 2 client credentials (``POST /v1/oauth2/token``); the access token is kept
  until a minute before it expires, and fetched again after a 401.
- ``authorize`` creates an order (``POST /v2/checkout/orders``) for the amount, with
  intent ``AUTHORIZE`` (manual capture) or ``CAPTURE`` (automatic), paid from the
  payer's vaulted PayPal wallet: the payment-method token is a PayPal vault id
  (``payment_source.paypal.vault_id``), obtained by the storefront when the payer
  saved their wallet. Then, as the order's status says:
  ``APPROVED`` -> authorize (``/authorize``) or capture (``/capture``) the order;
  ``COMPLETED`` -> PayPal already did; ``PAYER_ACTION_REQUIRED`` -> ``ActionRequired``
  with the approval link. A 422 naming the instrument (``INSTRUMENT_DECLINED``...) or
  a ``DENIED`` authorization -> ``Declined``.
- ``capture`` (``POST /v2/payments/authorizations/{id}/capture``, ``final_capture``:
  one capture per authorization, as everywhere else), ``void``
  (``/authorizations/{id}/void``; a payment still awaiting the payer is an order
  that holds no money, voided locally), ``refund`` (``/v2/payments/captures/{id}/refund``:
  the capture's id comes from our ledger).
- ``retrieve`` reads the order (``GET /v2/checkout/orders/{id}``) of a payment that
  awaited the payer: ``PAYER_ACTION_REQUIRED`` -> ``ActionRequired``; ``VOIDED`` ->
  ``Declined``; ``APPROVED`` (the payer approved it) -> authorize or capture it as
  at checkout, its request id derived from the order's, so a retrieve repeated
  after a crash is answered, not repeated; ``COMPLETED`` -> its authorization or
  capture. The payment keeps the order's id as its reference; the authorization's
  own id, which capture and void need, is kept in the ledger.
- Every call sends our idempotency key as ``PayPal-Request-Id`` (the order's
  authorize or capture step derives its own from it) and runs inside
  ``PaymentLedger``, which enforces the key and the money limits itself.

References: the authorization's id (manual capture) or the order's id (automatic, or
approved by the payer after checkout).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import httpx

from commands.ordering.payment_gateway import (
    ActionRequired,
    AuthorizationOutcome,
    Authorized,
    Captured,
    CaptureMode,
    Declined,
    GatewayRefused,
    GatewayUnavailable,
    Refunded,
    Voided,
    gateway_event_id,
)
from domain.money import Money
from infra.payments.ledger import ACTION_REQUIRED, LedgerEntry, PaymentLedger

NAME = "paypal"
SANDBOX_URL = "https://api-m.sandbox.paypal.com"
LIVE_URL = "https://api-m.paypal.com"
TOKEN_MARGIN_SECONDS = 60.0
# 422 issues that mean "this payer's instrument will not pay", not "our request is wrong".
DECLINE_ISSUES = frozenset(
    {
        "INSTRUMENT_DECLINED",
        "PAYER_CANNOT_PAY",
        "PAYEE_BLOCKED_TRANSACTION",
        "TRANSACTION_REFUSED",
        "PAYER_ACCOUNT_RESTRICTED",
        "PAYER_ACCOUNT_LOCKED_OR_CLOSED",
        "INVALID_RESOURCE_ID",
    }
)
DECLINE_REASONS = {
    "INSTRUMENT_DECLINED": "PayPal declined the payment method.",
    "INVALID_RESOURCE_ID": "This PayPal wallet is not recognised.",
}


def _event(kind: str, object_id: str) -> str:
    return gateway_event_id(NAME, kind, object_id)


def _amount(money: Money) -> dict[str, str]:
    return {"currency_code": money.currency, "value": str(money.amount)}


class _Declined(Exception):
    def __init__(self, issue: str, reason: str) -> None:
        super().__init__(reason)
        self.issue = issue
        self.reason = reason

    def outcome(self, reference: str | None, event_key: str) -> Declined:
        return Declined(reference, self.issue.lower(), self.reason, _event("declined", event_key))


class PayPalGateway:
    name = NAME

    def __init__(
        self,
        http: httpx.Client,
        client_id: str,
        secret: str,
        ledger: PaymentLedger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``http``: a client with ``base_url`` set (``SANDBOX_URL`` or ``LIVE_URL``)
        and a timeout."""
        self._http = http
        self._credentials = (client_id, secret)
        self._ledger = ledger
        self._clock = clock
        self._token: tuple[str, float] | None = None  # (access token, expires at)
        self._token_lock = threading.Lock()

    # --- the port ---------------------------------------------------------------------

    def authorize(
        self,
        amount: Money,
        payment_method_token: str,
        idempotency_key: str,
        capture: CaptureMode = "manual",
    ) -> AuthorizationOutcome:
        def pay() -> AuthorizationOutcome:
            intent = "CAPTURE" if capture == "automatic" else "AUTHORIZE"
            body = {
                "intent": intent,
                "purchase_units": [{"reference_id": "default", "amount": _amount(amount)}],
                "payment_source": {"paypal": {"vault_id": payment_method_token}},
            }
            try:
                order = self._post("/v2/checkout/orders", body, idempotency_key)
                if order["status"] == "PAYER_ACTION_REQUIRED":
                    return ActionRequired(
                        order["id"],
                        _event("action-required", order["id"]),
                        approval_url=_link(order, "payer-action"),
                    )
                if order["status"] == "APPROVED":
                    order = self._take_step(order["id"], intent, idempotency_key)
            except _Declined as declined:
                return declined.outcome(None, idempotency_key)
            return _settled(order, amount, intent)

        request = {"amount": amount.to_dict(), "token": payment_method_token, "capture": capture}
        return self._ledger.authorize(idempotency_key, request, amount, pay)

    def capture(self, reference: str, amount: Money, idempotency_key: str) -> Captured:
        def capture(entry: LedgerEntry) -> Captured:
            captured = self._call_refusing_declines(
                f"/v2/payments/authorizations/{_authorization(entry)}/capture",
                {"amount": _amount(amount), "final_capture": True},
                idempotency_key,
            )
            return Captured(reference, captured["id"], amount, _event("captured", captured["id"]))

        return self._ledger.capture(reference, amount, idempotency_key, capture)

    def void(self, reference: str, idempotency_key: str) -> Voided:
        def void(entry: LedgerEntry) -> Voided:
            # A payment still awaiting the payer is a PayPal order that holds no money
            # (PayPal lets unapproved orders expire): nothing to call.
            if entry.status == ACTION_REQUIRED:
                return Voided(reference, _event("voided", reference))
            self._call_refusing_declines(
                f"/v2/payments/authorizations/{_authorization(entry)}/void", None, idempotency_key
            )
            return Voided(reference, _event("voided", reference))

        return self._ledger.void(reference, idempotency_key, void)

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> Refunded:
        def refund(entry: LedgerEntry) -> Refunded:
            assert entry.capture_id is not None  # the ledger refunds captured payments only
            refunded = self._call_refusing_declines(
                f"/v2/payments/captures/{entry.capture_id}/refund",
                {"amount": _amount(amount)},
                idempotency_key,
            )
            return Refunded(reference, refunded["id"], amount, _event("refunded", refunded["id"]))

        return self._ledger.refund(reference, amount, idempotency_key, refund)

    def retrieve(self, reference: str) -> AuthorizationOutcome:
        def fetch(entry: LedgerEntry) -> AuthorizationOutcome:
            order = self._get(f"/v2/checkout/orders/{reference}")
            status = order["status"]
            if status in ("CREATED", "SAVED", "PAYER_ACTION_REQUIRED"):
                return ActionRequired(
                    reference,
                    _event("action-required", reference),
                    approval_url=_link(order, "payer-action"),
                )
            if status == "VOIDED":
                return Declined(
                    reference,
                    "voided",
                    "The PayPal payment was not approved.",
                    _event("declined", reference),
                )
            intent = order["intent"]  # the step's answer does not repeat it
            if status == "APPROVED":
                try:
                    order = self._take_step(reference, intent, reference)
                except _Declined as declined:
                    return declined.outcome(reference, reference)
            elif status != "COMPLETED":
                raise GatewayRefused(f"PayPal order {reference} is {status}")
            return _as_order(reference, _settled(order, entry.authorized, intent))

        return self._ledger.settle(reference, fetch)

    def _take_step(self, order_id: str, intent: str, request_id: str) -> dict[str, Any]:
        """Authorize or capture an approved order, as its intent says; PayPal answers
        a repeat of ``request_id`` with the first answer."""
        step = "authorize" if intent == "AUTHORIZE" else "capture"
        return self._post(f"/v2/checkout/orders/{order_id}/{step}", {}, f"{request_id}:{step}")

    # --- HTTP -------------------------------------------------------------------------

    def _call_refusing_declines(
        self, path: str, body: Mapping[str, Any] | None, request_id: str
    ) -> dict[str, Any]:
        """After authorization, a 422 is PayPal refusing what our ledger allowed."""
        try:
            return self._post(path, body, request_id)
        except _Declined as declined:
            raise GatewayRefused(f"PayPal refused: {declined.reason}") from declined

    def _post(self, path: str, body: Mapping[str, Any] | None, request_id: str) -> dict[str, Any]:
        return self._send("POST", path, body, {"PayPal-Request-Id": request_id})

    def _get(self, path: str) -> dict[str, Any]:
        try:
            return self._send("GET", path, None, {})
        except _Declined as declined:
            raise GatewayRefused(f"PayPal refused: {declined.reason}") from declined

    def _send(
        self, method: str, path: str, body: Mapping[str, Any] | None, extra: Mapping[str, str]
    ) -> dict[str, Any]:
        for _ in range(2):
            headers = {
                "Authorization": f"Bearer {self._access_token()}",
                "Prefer": "return=representation",
                **extra,
            }
            try:
                response = self._http.request(method, path, json=body, headers=headers)
            except httpx.HTTPError as error:
                raise GatewayUnavailable(
                    f"PayPal did not answer: {type(error).__name__}"
                ) from error
            if response.status_code != 401:
                return _answer(response)
            self._token = None  # expired or revoked early: fetch another, once
        raise GatewayUnavailable("PayPal refused our access token twice")

    def _access_token(self) -> str:
        with self._token_lock:
            if self._token is not None and self._clock() < self._token[1]:
                return self._token[0]
            try:
                response = self._http.post(
                    "/v1/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=self._credentials,
                    headers={"Accept": "application/json"},
                )
            except httpx.HTTPError as error:
                raise GatewayUnavailable(
                    f"PayPal did not answer: {type(error).__name__}"
                ) from error
            if response.status_code != 200:
                raise GatewayUnavailable(f"PayPal refused our credentials ({response.status_code})")
            token = response.json()
            expires_at = self._clock() + float(token["expires_in"]) - TOKEN_MARGIN_SECONDS
            self._token = (str(token["access_token"]), expires_at)
            return self._token[0]


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.status_code == 204:
        return {}
    if response.is_success:
        answer: dict[str, Any] = response.json()
        return answer
    if response.status_code >= 500 or response.status_code == 429:
        raise GatewayUnavailable(f"PayPal failed ({response.status_code})")
    problem = response.json() if response.content else {}
    details = problem.get("details") or [{}]
    issue = str(details[0].get("issue") or problem.get("name") or "UNKNOWN")
    description = str(details[0].get("description") or problem.get("message") or issue)
    if response.status_code in (404, 422) and issue in DECLINE_ISSUES:
        raise _Declined(issue, DECLINE_REASONS.get(issue, description))
    raise GatewayRefused(f"PayPal refused ({response.status_code} {issue}): {description}")


def _link(resource: Mapping[str, Any], rel: str) -> str | None:
    return next((str(x["href"]) for x in resource.get("links", []) if x.get("rel") == rel), None)


def _settled(order: Mapping[str, Any], amount: Money, intent: str) -> AuthorizationOutcome:
    """The outcome of a completed order: its authorization, or its capture."""
    payments = order["purchase_units"][0].get("payments", {})
    if intent == "AUTHORIZE":
        authorization = payments["authorizations"][0]
        reference = authorization["id"]
        if authorization["status"] in ("CREATED", "PENDING"):
            return Authorized(reference, amount, _event("authorized", reference))
        return _denied(reference, authorization)
    capture = payments["captures"][0]
    if capture["status"] in ("COMPLETED", "PENDING"):
        captured = Captured(order["id"], capture["id"], amount, _event("captured", capture["id"]))
        return Authorized(order["id"], amount, _event("authorized", order["id"]), captured)
    return _denied(order["id"], capture)


def _denied(reference: str, payment: Mapping[str, Any]) -> Declined:
    reason = payment.get("status_details", {}).get("reason", "DECLINED")
    return Declined(
        reference,
        str(reason).lower(),
        "PayPal declined the payment.",
        _event("declined", str(payment["id"])),
    )


def _as_order(order_id: str, outcome: AuthorizationOutcome) -> AuthorizationOutcome:
    """The outcome of an order approved by its payer, under the order's id: the
    payment's reference since checkout (an authorization's own id goes with it)."""
    match outcome:
        case Authorized() if outcome.reference != order_id:
            return replace(outcome, reference=order_id, authorization_id=outcome.reference)
        case Declined():
            return replace(outcome, reference=order_id)
    return outcome


def _authorization(entry: LedgerEntry) -> str:
    """The id PayPal's authorization endpoints take for this payment."""
    return entry.authorization_id or entry.reference

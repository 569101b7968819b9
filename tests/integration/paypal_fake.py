"""PayPal's REST API replayed from recorded contracts (``paypal_contracts/``), for
respx.

Each contract is one exchange as PayPal documents it: the request (method, path,
the headers it must carry, the body's shape) and the response. ``PayPalFake``
checks every request the adapter sends against its contract (a request that differs
fails the test) and answers the recorded response, with fresh ids in place of the
recorded ones, so that tests can hold several orders, captures and refunds.
Which contract answers follows PayPal's own logic: the vault id names the payer's
wallet (``VAULT_OK`` pays, ``VAULT_DECLINED`` is declined at authorization,
``VAULT_PAYER_ACTION`` needs the payer's approval, its order then read back with the
status a test sets in ``orders``); an order's next step follows its intent, and an
order authorized or captured reads back as that step answered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import respx

CONTRACTS = Path(__file__).parent / "paypal_contracts"
BASE_URL = "https://api-m.sandbox.paypal.com"
VAULT_OK = "8kk8451t"
VAULT_DECLINED = "2nj5781pe"
VAULT_PAYER_ACTION = "4rw9732kq"
RECORDED_IDS = (
    "5O190127TN364715T",  # orders
    "9XT87204TT0958104",
    "7JP1937554310672S",
    "0AW2184448108334S",  # authorization
    "3C679366HH908993F",  # captures
    "2GG279541U471931P",
    "1JU08902781691411",  # refund
)


def same_shape(sent: Any, recorded: Any) -> bool:
    """The same keys all the way down (values may differ: amounts, ids)."""
    if isinstance(recorded, dict):
        return (
            isinstance(sent, dict)
            and set(sent) == set(recorded)
            and all(same_shape(sent[k], recorded[k]) for k in recorded)
        )
    if isinstance(recorded, list):
        return (
            isinstance(sent, list)
            and len(sent) == len(recorded)
            and all(same_shape(s, r) for s, r in zip(sent, recorded, strict=True))
        )
    return recorded is None if sent is None else recorded is not None


class PayPalFake:
    def __init__(self) -> None:
        self.contracts = {p.stem: json.loads(p.read_text()) for p in CONTRACTS.glob("*.json")}
        self.requests: list[tuple[str, httpx.Request]] = []
        self.orders: dict[str, dict[str, Any]] = {}  # order id -> {"intent", "vault_id"}
        self.tokens_issued = 0
        self.router = respx.mock(base_url=BASE_URL, assert_all_called=False)
        self.router.post("/v1/oauth2/token").mock(side_effect=self._token)
        self.router.post("/v2/checkout/orders").mock(side_effect=self._create_order)
        self.router.get(path__regex=r"^/v2/checkout/orders/(?P<order_id>\w+)$").mock(
            side_effect=self._get_order
        )
        self.router.post(
            path__regex=r"^/v2/checkout/orders/(?P<order_id>\w+)/(?P<step>authorize|capture)$"
        ).mock(side_effect=self._order_step)
        self.router.post(
            path__regex=r"^/v2/payments/authorizations/(?P<authorization_id>\w+)/capture$"
        ).mock(
            side_effect=lambda request, authorization_id: self._answer(
                "capture_authorization", request
            )
        )
        self.router.post(
            path__regex=r"^/v2/payments/authorizations/(?P<authorization_id>\w+)/void$"
        ).mock(
            side_effect=lambda request, authorization_id: self._answer(
                "void_authorization", request, keep=authorization_id
            )
        )
        self.router.post(path__regex=r"^/v2/payments/captures/(?P<capture_id>\w+)/refund$").mock(
            side_effect=lambda request, capture_id: self._answer("refund_capture", request)
        )

    @property
    def access_token(self) -> str:
        return str(self.contracts["oauth_token"]["response"]["body"]["access_token"])

    def sent(self, contract: str) -> list[httpx.Request]:
        return [request for name, request in self.requests if name == contract]

    # --- handlers -------------------------------------------------------------------

    def _token(self, request: httpx.Request) -> httpx.Response:
        contract = self._check("oauth_token", request)
        assert request.headers["Authorization"].startswith("Basic ")
        form = dict(httpx.QueryParams(request.content.decode()))
        assert form == contract["form"]
        self.tokens_issued += 1
        return self._respond("oauth_token")

    def _create_order(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        vault_id = body["payment_source"]["paypal"]["vault_id"]
        if vault_id == VAULT_PAYER_ACTION:
            response = self._answer("create_order_payer_action", request)
            self.orders[response.json()["id"]] = {
                "intent": body["intent"],
                "vault_id": vault_id,
                "status": "PAYER_ACTION_REQUIRED",
            }
            return response
        name = "create_order_authorize" if body["intent"] == "AUTHORIZE" else "create_order_capture"
        response = self._answer(name, request)
        self.orders[response.json()["id"]] = {"intent": body["intent"], "vault_id": vault_id}
        return response

    def _get_order(self, request: httpx.Request, order_id: str) -> httpx.Response:
        response = self._answer("get_order", request, keep=order_id)
        order = self.orders[order_id]
        if "completed" in order:
            return httpx.Response(200, json=order["completed"])
        return httpx.Response(200, json={**response.json(), "status": order["status"]})

    def _order_step(self, request: httpx.Request, order_id: str, step: str) -> httpx.Response:
        order = self.orders[order_id]
        assert step == order["intent"].lower(), f"{step} on an order meant to {order['intent']}"
        if order["vault_id"] == VAULT_DECLINED:
            return self._answer("authorize_order_declined", request, keep=order_id)
        response = self._answer(
            "authorize_order" if step == "authorize" else "capture_order", request, keep=order_id
        )
        order["completed"] = {**response.json(), "intent": order["intent"]}  # as GET shows it
        return response

    # --- helpers --------------------------------------------------------------------

    def _check(self, name: str, request: httpx.Request) -> dict[str, Any]:
        contract: dict[str, Any] = self.contracts[name]["request"]
        assert request.method == contract["method"]
        missing = [h for h in contract["headers"] if h not in request.headers]
        assert not missing, f"{name}: missing headers {missing}"
        if name != "oauth_token":
            assert request.headers["Authorization"] == f"Bearer {self.access_token}"
            sent = json.loads(request.content) if request.content else None
            assert same_shape(sent, contract["body"]), f"{name}: {sent} != {contract['body']}"
        self.requests.append((name, request))
        return contract

    def _answer(self, name: str, request: httpx.Request, keep: str = "") -> httpx.Response:
        self._check(name, request)
        return self._respond(name, keep)

    def _respond(self, name: str, keep: str = "") -> httpx.Response:
        """The recorded response, each recorded id replaced by a fresh one; the
        resource's own id (the top-level ``id``) by ``keep``, the id the request
        named, when given."""
        response = self.contracts[name]["response"]
        own_id = response["body"].get("id")
        text = json.dumps(response["body"])
        for recorded in RECORDED_IDS:
            if recorded in text:
                text = text.replace(
                    recorded, keep if keep and recorded == own_id else self._fresh()
                )
        return httpx.Response(response["status"], json=json.loads(text))

    @staticmethod
    def _fresh() -> str:
        return f"FAKE{uuid4().hex[:13].upper()}"

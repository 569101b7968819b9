"""Read-your-writes by table: for every command route, the token its answer carries
is accepted by each query that shows its effect, and the effect is there at once
(no polling). A command that writes two logs answers both positions; a view waits
for the logs it follows and ignores the others. The table must name every command
route of the OpenAPI document, so that a new one cannot be forgotten."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from domain.users import ERASED_TEXT
from tests.support.api import CONSISTENCY, bearer, written
from tests.support.catalog_client import Cast, listed_product, product_body
from tests.support.ordering_client import awaiting_order, checkout, confirmed_order
from tests.support.server import RESET_SUBJECT, VERIFY_SUBJECT, Server
from tests.support.users_client import STRONG_PASSWORD, Account, unique_email, verified_account

pytestmark = pytest.mark.e2e
Check = Callable[[Any], bool]
NOT_IN_THE_TABLE = {
    "POST /auth/verify-email/resend": "always 202 without a token: says nothing of the account",
    "POST /auth/password-reset": "always 202 without a token: says nothing of the account",
    "POST /webhooks/stripe": "the gateway's, not a client's: answers no token",
    "POST /sandbox/3ds/{reference}": "the sandbox card issuer's page, not the shop: no token",
} | dict.fromkeys(
    (
        "POST /me/devices",
        "DELETE /me/devices/{device_id}",
        "POST /me/notifications/{notification_id}/read",
        "POST /me/notifications/read-all",
        "POST /me/notifications/stream-tickets",
        "POST /admin/notifications/deliveries/{delivery_id}/resend",
        "POST /webhooks/ses-feedback",
    ),
    "notifications' operational state, written to its table, not a log: visible at once",
)


@dataclass(frozen=True)
class Query:
    path: str
    headers: dict[str, str]
    shows: Check


@dataclass
class World:
    server: Server
    client: httpx.Client
    cast: Cast

    def account(self, label: str) -> Account:
        return verified_account(self.server, self.client, label)

    def product(self, price: str = "20.00", stock: int = 5) -> tuple[str, str]:
        return listed_product(self.client, self.cast, price, stock)

    def draft(self) -> str:
        """An unpublished product with a price (publishable once categorised)."""
        body = product_body(price={"amount": "12.00", "currency": "EUR"})
        return written(self.client.post("/products", json=body, headers=self.seller), 201)

    @property
    def seller(self) -> dict[str, str]:
        return self.cast.seller.headers

    def order(self, shopper: Account, state: str = "confirmed") -> str:
        """An order of ``shopper`` in ``state`` (confirmed, shipped, delivered)."""
        order_id, _ = confirmed_order(self.client, self.cast, shopper)
        if state in ("shipped", "delivered"):
            self.post(f"/admin/orders/{order_id}/ship", self.cast.admin, SHIPMENT)
        if state == "delivered":
            self.post(f"/admin/orders/{order_id}/deliver", self.cast.admin)
        return order_id

    def review(self, product_id: str, author: Account) -> str:
        return written(
            self.post(f"/products/{product_id}/reviews", author.headers, {"rating": 4}),
            201,
            context="reviews",
        )

    def post(
        self, path: str, headers: dict[str, str], body: dict[str, Any] | None = None
    ) -> httpx.Response:
        answer = self.client.post(path, json=body, headers=headers)
        assert answer.status_code < 300, (path, answer.text)
        return answer


SHIPMENT = {"carrier": "UPS", "tracking_number": "1Z999"}
Row = Callable[[World], tuple[httpx.Response, list[Query]]]


def has(text: str) -> Check:
    """The answer mentions ``text`` somewhere."""
    return lambda body: text in orjson.dumps(body).decode()


def lacks(text: str) -> Check:
    return lambda body: text not in orjson.dumps(body).decode()


def field(name: str, value: Any) -> Check:
    return lambda body: body[name] == value


def _order_status(status: str) -> Check:
    return field("status", status)


# --- the rows: each runs its command and names the queries that show its effect ------


def register(w: World) -> tuple[httpx.Response, list[Query]]:
    email = unique_email("ryw")
    answer = w.client.post(
        "/auth/register", json={"email": email, "password": STRONG_PASSWORD, "name": "Ryw"}
    )
    return answer, [Query("/admin/users?limit=200", w.cast.admin, has(email))]


def verify_email(w: World) -> tuple[httpx.Response, list[Query]]:
    email = unique_email("rywv")
    w.client.post("/auth/register", json={"email": email, "password": STRONG_PASSWORD, "name": "V"})
    token = w.server.mailed_token(w.client, email, VERIFY_SUBJECT)
    answer = w.client.post("/auth/verify-email", json={"token": token})
    user_id = answer.json()["id"]
    return answer, [Query(f"/users/{user_id}", w.cast.admin, has('"email_verified":true'))]


def login(w: World) -> tuple[httpx.Response, list[Query]]:
    """With X-Cart-Token: the guest cart merges, and GET /cart accepts the users +
    ordering token."""
    shopper = w.account("rywlogin")
    product_id, sku = w.product()
    guest = w.client.post("/cart/lines", json={"product_id": product_id, "quantity": 1})
    answer = w.client.post(
        "/auth/login",
        json={"email": shopper.email, "password": shopper.password},
        headers={"X-Cart-Token": guest.json()["cart_token"]},
    )
    assert "users:" in answer.json()["position"] and "ordering:" in answer.json()["position"]
    token = bearer(answer.json()["access_token"])
    return answer, [Query("/cart", token, has(sku)), Query("/users/me", token, has(shopper.email))]


def refresh(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywrefresh")
    answer = w.client.post("/auth/refresh", json={"refresh_token": shopper.refresh_token})
    token = bearer(answer.json()["access_token"])
    return answer, [Query("/users/me", token, has(shopper.email))]


def logout(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywlogout")
    other = w.client.post("/auth/login", json={"email": shopper.email, "password": STRONG_PASSWORD})
    answer = w.client.post("/auth/logout", headers=shopper.headers)
    # The other session still works and sees the account as it is.
    token = bearer(other.json()["access_token"])
    return answer, [Query("/users/me", token, has(shopper.email))]


def reset_password(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywreset")
    w.client.post("/auth/password-reset", json={"email": shopper.email})
    token = w.server.mailed_token(w.client, shopper.email, RESET_SUBJECT)
    answer = w.client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": STRONG_PASSWORD[::-1]}
    )
    return answer, [Query(f"/users/{shopper.id}", w.cast.admin, has(shopper.email))]


def change_password(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywpassword")
    answer = w.client.post(
        "/auth/password",
        json={"current_password": STRONG_PASSWORD, "new_password": STRONG_PASSWORD[::-1]},
        headers=shopper.headers,
    )
    return answer, [Query(f"/users/{shopper.id}", w.cast.admin, has(shopper.email))]


def update_profile(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywprofile")
    answer = w.client.patch("/users/me", json={"name": "Renamed Ryw"}, headers=shopper.headers)
    return answer, [
        Query("/users/me", shopper.headers, has("Renamed Ryw")),
        Query(f"/admin/users?email_prefix={shopper.email}", w.cast.admin, has("Renamed Ryw")),
    ]


def deactivate_self(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywgone")
    answer = w.client.post("/users/me/deactivate", headers=shopper.headers)
    return answer, [Query(f"/users/{shopper.id}", w.cast.admin, has('"active":false'))]


def grant_role(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywgrant")
    answer = w.client.post(
        f"/admin/users/{shopper.id}/roles", json={"role": "seller"}, headers=w.cast.admin
    )
    return answer, [Query(f"/users/{shopper.id}", w.cast.admin, has('"seller"'))]


def revoke_role(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywrevoke")
    w.post(f"/admin/users/{shopper.id}/roles", w.cast.admin, {"role": "seller"})
    answer = w.client.delete(f"/admin/users/{shopper.id}/roles/seller", headers=w.cast.admin)
    return answer, [Query(f"/users/{shopper.id}", w.cast.admin, lacks('"seller"'))]


def deactivate(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywdeact")
    answer = w.client.post(
        f"/admin/users/{shopper.id}/deactivate", json={"reason": "fraud"}, headers=w.cast.admin
    )
    return answer, [Query(f"/users/{shopper.id}", w.cast.admin, has('"active":false'))]


def erase_self(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("ryweraseme")
    order_id = w.order(shopper)
    answer = w.client.post(
        "/users/me/erasure", json={"password": shopper.password}, headers=shopper.headers
    )
    return answer, [
        Query(f"/users/{shopper.id}", w.cast.admin, has(ERASED_TEXT)),
        # The orders view follows the users log for the erasure (ADR 0024).
        Query(f"/orders/{order_id}", w.cast.admin, field("shipping_address", {})),
    ]


def erase(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("ryweraseadmin")
    answer = w.client.post(f"/admin/users/{shopper.id}/erasure", headers=w.cast.admin)
    return answer, [
        Query(f"/users/{shopper.id}", w.cast.admin, has(ERASED_TEXT)),
        Query(f"/admin/users?email_prefix={shopper.email}", w.cast.admin, field("items", [])),
    ]


def create_product(w: World) -> tuple[httpx.Response, list[Query]]:
    body = product_body()
    answer = w.client.post("/products", json=body, headers=w.seller)
    pid = answer.json()["id"]
    return answer, [
        Query(f"/products/{pid}", w.seller, has(body["sku"])),
        Query("/inventory?limit=200", w.seller, has(body["sku"])),
    ]


def update_product(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, _ = w.product()
    answer = w.client.patch(f"/products/{pid}", json={"name": "Renamed Shoe"}, headers=w.seller)
    return answer, [
        Query(f"/products/{pid}", {}, has("Renamed Shoe")),
        Query("/products?limit=100", {}, has("Renamed Shoe")),
    ]


def change_price(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, _ = w.product()
    answer = w.client.put(
        f"/products/{pid}/price", json={"amount": "77.70", "currency": "EUR"}, headers=w.seller
    )
    return answer, [Query(f"/products/{pid}", {}, has("77.70"))]


def categorise(w: World) -> tuple[httpx.Response, list[Query]]:
    pid = w.draft()
    answer = w.client.put(
        f"/products/{pid}/categories", json={"category_ids": [w.cast.category_id]}, headers=w.seller
    )
    return answer, [Query(f"/products/{pid}", w.seller, has(w.cast.category_id))]


def publish(w: World) -> tuple[httpx.Response, list[Query]]:
    pid = w.draft()
    w.client.put(
        f"/products/{pid}/categories", json={"category_ids": [w.cast.category_id]}, headers=w.seller
    )
    answer = w.client.post(f"/products/{pid}/publish", headers=w.seller)
    return answer, [Query(f"/products/{pid}", {}, has(pid))]


def unpublish(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, _ = w.product()
    answer = w.client.post(f"/products/{pid}/unpublish", headers=w.seller)
    return answer, [Query("/products?limit=100", {}, lacks(pid))]


def archive(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, _ = w.product()
    answer = w.client.post(f"/products/{pid}/archive", headers=w.seller)
    return answer, [Query(f"/products/{pid}", w.seller, has('"archived"'))]


def create_category(w: World) -> tuple[httpx.Response, list[Query]]:
    name = f"Ryw {uuid.uuid4().hex[:8]}"
    answer = w.client.post("/categories", json={"name": name}, headers=w.cast.admin)
    return answer, [Query("/categories", {}, has(name))]


def _category(w: World) -> str:
    name = f"Ryw {uuid.uuid4().hex[:8]}"
    return written(w.post("/categories", w.cast.admin, {"name": name}), 201)


def rename_category(w: World) -> tuple[httpx.Response, list[Query]]:
    name = f"Renamed {uuid.uuid4().hex[:8]}"
    answer = w.client.patch(
        f"/categories/{_category(w)}", json={"name": name}, headers=w.cast.admin
    )
    return answer, [Query("/categories", {}, has(name))]


def move_category(w: World) -> tuple[httpx.Response, list[Query]]:
    child, parent = _category(w), _category(w)
    answer = w.client.post(
        f"/categories/{child}/move", json={"parent_id": parent}, headers=w.cast.admin
    )
    return answer, [Query("/categories", {}, has(f'"parent_id":"{parent}"'))]


def archive_category(w: World) -> tuple[httpx.Response, list[Query]]:
    category = _category(w)
    answer = w.client.post(f"/categories/{category}/archive", headers=w.cast.admin)
    return answer, [Query("/categories", {}, lacks(category))]


def _stock_query(w: World, sku: str, text: str, path: str = "/inventory?limit=200") -> Query:
    return Query(
        path,
        w.seller,
        lambda body: any(
            row["sku"] == sku and text in orjson.dumps(row).decode() for row in body["items"]
        ),
    )


ANALYTICS_STOCK = "/admin/analytics/stock?limit=200"


def receive(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, sku = w.product(stock=0)
    answer = w.client.post(f"/inventory/{sku}/receipts", json={"quantity": 7}, headers=w.seller)
    return answer, [
        _stock_query(w, sku, '"on_hand":7'),
        _stock_query(w, sku, '"on_hand":7', ANALYTICS_STOCK),
        Query(f"/products/{pid}", {}, has('"in_stock":true')),
    ]


def adjust(w: World) -> tuple[httpx.Response, list[Query]]:
    _, sku = w.product(stock=5)
    answer = w.client.post(
        f"/inventory/{sku}/adjustments", json={"delta": -2, "reason": "broken"}, headers=w.seller
    )
    return answer, [
        _stock_query(w, sku, '"on_hand":3'),
        _stock_query(w, sku, '"on_hand":3', ANALYTICS_STOCK),
    ]


def threshold(w: World) -> tuple[httpx.Response, list[Query]]:
    _, sku = w.product()
    answer = w.client.put(
        f"/inventory/{sku}/low-stock-threshold", json={"threshold": 4}, headers=w.seller
    )
    return answer, [_stock_query(w, sku, '"low_stock_threshold":4')]


def write_review(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, _ = w.product()
    answer = w.client.post(
        f"/products/{pid}/reviews",
        json={"rating": 2, "title": "Meh ryw"},
        headers=w.cast.customer.headers,
    )
    return answer, [
        Query(f"/products/{pid}/reviews", {}, has("Meh ryw")),
        Query(f"/products/{pid}", {}, has('"count":1')),
    ]


def edit_review(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, _ = w.product()
    review = w.review(pid, w.cast.customer)
    answer = w.client.patch(
        f"/reviews/{review}",
        json={"rating": 5, "title": "Edited ryw", "body": ""},
        headers=w.cast.customer.headers,
    )
    return answer, [Query(f"/products/{pid}/reviews", {}, has("Edited ryw"))]


def reply(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, _ = w.product()
    review = w.review(pid, w.cast.customer)
    answer = w.client.post(
        f"/reviews/{review}/reply", json={"body": "Thanks ryw"}, headers=w.seller
    )
    return answer, [Query(f"/products/{pid}/reviews", {}, has("Thanks ryw"))]


def hide(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, _ = w.product()
    review = w.review(pid, w.cast.customer)
    answer = w.client.post(f"/reviews/{review}/hide", json={"reason": "spam"}, headers=w.cast.admin)
    return answer, [Query(f"/products/{pid}/reviews", {}, lacks(review))]


def unhide(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, _ = w.product()
    review = w.review(pid, w.cast.customer)
    w.post(f"/reviews/{review}/hide", w.cast.admin, {"reason": "spam"})
    answer = w.client.post(f"/reviews/{review}/unhide", headers=w.cast.admin)
    return answer, [Query(f"/products/{pid}/reviews", {}, has(review))]


def _cart_with(w: World, shopper: Account) -> tuple[str, str]:
    pid, sku = w.product()
    w.post("/cart/lines", shopper.headers, {"product_id": pid, "quantity": 1})
    return pid, sku


def add_line(w: World) -> tuple[httpx.Response, list[Query]]:
    pid, sku = w.product()
    shopper = w.account("rywcart")
    answer = w.client.post(
        "/cart/lines", json={"product_id": pid, "quantity": 2}, headers=shopper.headers
    )
    return answer, [Query("/cart", shopper.headers, has(sku))]


def change_quantity(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywqty")
    _, sku = _cart_with(w, shopper)
    answer = w.client.put(f"/cart/lines/{sku}", json={"quantity": 3}, headers=shopper.headers)
    return answer, [Query("/cart", shopper.headers, has('"quantity":3'))]


def remove_line(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywremove")
    _, sku = _cart_with(w, shopper)
    answer = w.client.delete(f"/cart/lines/{sku}", headers=shopper.headers)
    return answer, [Query("/cart", shopper.headers, lacks(sku))]


def clear_cart(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywclear")
    _, sku = _cart_with(w, shopper)
    answer = w.client.delete("/cart", headers=shopper.headers)
    return answer, [Query("/cart", shopper.headers, lacks(sku))]


def merge(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywmerge")
    pid, sku = w.product()
    guest = w.client.post("/cart/lines", json={"product_id": pid, "quantity": 1})
    answer = w.client.post(
        "/cart/merge", json={"cart_token": guest.json()["cart_token"]}, headers=shopper.headers
    )
    return answer, [Query("/cart", shopper.headers, has(sku))]


def place_order(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywcheckout")
    _, sku = _cart_with(w, shopper)
    answer = checkout(w.client, shopper.headers)
    order_id = answer.json()["id"]
    return answer, [
        Query(f"/orders/{order_id}", shopper.headers, has(sku)),
        Query("/orders", shopper.headers, has(order_id)),
        Query("/cart", shopper.headers, lacks(sku)),
        Query(f"/admin/orders?customer_id={shopper.id}", w.cast.admin, has(order_id)),
    ]


def _order_queries(w: World, shopper: Account, order_id: str, check: Check) -> list[Query]:
    return [
        Query(f"/orders/{order_id}", shopper.headers, check),
        Query(
            f"/admin/orders?customer_id={shopper.id}", w.cast.admin, lambda b: check(b["items"][0])
        ),
    ]


def cancel(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywcancel")
    order_id = w.order(shopper)
    answer = w.client.post(f"/orders/{order_id}/cancel", json={}, headers=shopper.headers)
    return answer, _order_queries(w, shopper, order_id, _order_status("cancelled"))


def confirm_payment(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywthreeds")
    _cart_with(w, shopper)
    placed = checkout(w.client, shopper.headers, token="pm_card_threeDSecure2Required")
    order_id = placed.json()["id"]
    order = awaiting_order(w.client, shopper.headers, order_id, placed.json()["position"])
    challenge = order["authentication"]["approval_url"].removeprefix(w.server.base_url)
    w.post(challenge, {}, {"outcome": "approve"})
    answer = w.client.post(f"/orders/{order_id}/payment/confirm", headers=shopper.headers)
    return answer, [
        Query(f"/orders/{order_id}/payments", shopper.headers, has('"authorized"')),
        Query("/payments", shopper.headers, has('"authorized"')),
    ]


def request_return(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywreturn")
    order_id = w.order(shopper, "delivered")
    answer = w.client.post(
        f"/orders/{order_id}/return", json={"reason": "small"}, headers=shopper.headers
    )
    return answer, _order_queries(w, shopper, order_id, _order_status("return_requested"))


def admin_cancel(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywadmincancel")
    order_id = w.order(shopper)
    answer = w.client.post(
        f"/admin/orders/{order_id}/cancel", json={"reason": "fraud"}, headers=w.cast.admin
    )
    return answer, _order_queries(w, shopper, order_id, _order_status("cancelled"))


def ship(w: World) -> tuple[httpx.Response, list[Query]]:
    """Ship captures first: its token names both logs, and the payment history
    (the payments view) shows the capture at once."""
    shopper = w.account("rywship")
    order_id = w.order(shopper)
    answer = w.client.post(f"/admin/orders/{order_id}/ship", json=SHIPMENT, headers=w.cast.admin)
    return answer, [
        *_order_queries(w, shopper, order_id, _order_status("shipped")),
        Query(f"/orders/{order_id}/payments", shopper.headers, has('"captured"')),
        Query(f"/admin/payments?customer_id={shopper.id}", w.cast.admin, has('"captured"')),
    ]


def deliver(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper = w.account("rywdeliver")
    order_id = w.order(shopper, "shipped")
    answer = w.client.post(f"/admin/orders/{order_id}/deliver", headers=w.cast.admin)
    return answer, _order_queries(w, shopper, order_id, _order_status("delivered"))


def _return_requested(w: World, label: str) -> tuple[Account, str]:
    shopper = w.account(label)
    order_id = w.order(shopper, "delivered")
    w.post(f"/orders/{order_id}/return", shopper.headers, {"reason": "small"})
    return shopper, order_id


def approve_return(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper, order_id = _return_requested(w, "rywapprove")
    answer = w.client.post(f"/admin/orders/{order_id}/return/approve", headers=w.cast.admin)
    return answer, _order_queries(w, shopper, order_id, _order_status("return_approved"))


def refuse_return(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper, order_id = _return_requested(w, "rywrefuse")
    answer = w.client.post(
        f"/admin/orders/{order_id}/return/refuse", json={"reason": "worn"}, headers=w.cast.admin
    )
    return answer, _order_queries(w, shopper, order_id, _order_status("return_refused"))


def returned(w: World) -> tuple[httpx.Response, list[Query]]:
    shopper, order_id = _return_requested(w, "rywreturned")
    w.post(f"/admin/orders/{order_id}/return/approve", w.cast.admin)
    answer = w.client.post(f"/admin/orders/{order_id}/returned", headers=w.cast.admin)
    return answer, _order_queries(w, shopper, order_id, _order_status("returned"))


def refund(w: World) -> tuple[httpx.Response, list[Query]]:
    """A refund pays back first: both logs in its token, both views current."""
    shopper = w.account("rywrefund")
    order_id = w.order(shopper, "delivered")
    answer = w.client.post(
        f"/admin/orders/{order_id}/refunds",
        json={"amount": {"amount": "5.00", "currency": "EUR"}, "reason": "goodwill"},
        headers={**w.cast.admin, "Idempotency-Key": uuid.uuid4().hex},
    )
    return answer, [
        *_order_queries(w, shopper, order_id, field("refunded", "5.00")),
        Query(f"/orders/{order_id}/payments", shopper.headers, has('"refunded"')),
        Query("/payments", shopper.headers, has('"refunded"')),
    ]


TABLE: dict[str, Row] = {
    "POST /auth/register": register,
    "POST /auth/verify-email": verify_email,
    "POST /auth/login": login,
    "POST /auth/refresh": refresh,
    "POST /auth/logout": logout,
    "POST /auth/password-reset/confirm": reset_password,
    "POST /auth/password": change_password,
    "PATCH /users/me": update_profile,
    "POST /users/me/deactivate": deactivate_self,
    "POST /admin/users/{user_id}/roles": grant_role,
    "DELETE /admin/users/{user_id}/roles/{role}": revoke_role,
    "POST /admin/users/{user_id}/deactivate": deactivate,
    "POST /users/me/erasure": erase_self,
    "POST /admin/users/{user_id}/erasure": erase,
    "POST /products": create_product,
    "PATCH /products/{product_id}": update_product,
    "PUT /products/{product_id}/price": change_price,
    "PUT /products/{product_id}/categories": categorise,
    "POST /products/{product_id}/publish": publish,
    "POST /products/{product_id}/unpublish": unpublish,
    "POST /products/{product_id}/archive": archive,
    "POST /categories": create_category,
    "PATCH /categories/{category_id}": rename_category,
    "POST /categories/{category_id}/move": move_category,
    "POST /categories/{category_id}/archive": archive_category,
    "POST /inventory/{sku}/receipts": receive,
    "POST /inventory/{sku}/adjustments": adjust,
    "PUT /inventory/{sku}/low-stock-threshold": threshold,
    "POST /products/{product_id}/reviews": write_review,
    "PATCH /reviews/{review_id}": edit_review,
    "POST /reviews/{review_id}/reply": reply,
    "POST /reviews/{review_id}/hide": hide,
    "POST /reviews/{review_id}/unhide": unhide,
    "POST /cart/lines": add_line,
    "PUT /cart/lines/{sku}": change_quantity,
    "DELETE /cart/lines/{sku}": remove_line,
    "DELETE /cart": clear_cart,
    "POST /cart/merge": merge,
    "POST /checkout": place_order,
    "POST /orders/{order_id}/cancel": cancel,
    "POST /orders/{order_id}/payment/confirm": confirm_payment,
    "POST /orders/{order_id}/return": request_return,
    "POST /admin/orders/{order_id}/cancel": admin_cancel,
    "POST /admin/orders/{order_id}/ship": ship,
    "POST /admin/orders/{order_id}/deliver": deliver,
    "POST /admin/orders/{order_id}/return/approve": approve_return,
    "POST /admin/orders/{order_id}/return/refuse": refuse_return,
    "POST /admin/orders/{order_id}/returned": returned,
    "POST /admin/orders/{order_id}/refunds": refund,
}


@pytest.fixture(scope="module")
def world(server: Server, cast: Cast) -> Iterator[World]:
    with server.client() as client:
        yield World(server, client, cast)


@pytest.mark.parametrize("route", sorted(TABLE))
def test_the_token_of_each_command_shows_its_effect_at_once(world: World, route: str) -> None:
    answer, queries = TABLE[route](world)
    assert answer.status_code < 300, answer.text
    token = answer.json()["position"]
    assert token, f"{route} answered no consistency token"
    assert answer.headers[CONSISTENCY] == token
    for query in queries:
        seen = world.client.get(query.path, headers={**query.headers, CONSISTENCY: token})
        assert seen.status_code == 200, (route, query.path, token, seen.text)
        assert query.shows(seen.json()), (route, query.path, token, seen.json())


def test_the_table_names_every_command_route(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    commands = {
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    }
    assert commands - NOT_IN_THE_TABLE.keys() == TABLE.keys()

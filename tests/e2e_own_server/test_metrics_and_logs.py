"""What an operator watches, from a ``shop run`` configured as in production:
``/metrics`` behind ``SHOP_METRICS_TOKEN``, requests counted by route template,
business counters after a checkout, a decline and a refund, the alert rules
checked against what is exported, and JSON log lines with request ids and no
secrets in them."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import bearer, refused, written
from tests.support.catalog_client import Cast, listed_product
from tests.support.in_process import in_process_app
from tests.support.ordering_client import confirmed_order, decided_order, place_order
from tests.support.polling import eventually
from tests.support.server import (
    NO_ADDRESS_LIMITS,
    RESET_SUBJECT,
    VERIFY_SUBJECT,
    Server,
    running_server,
)
from tests.support.users_client import STRONG_PASSWORD, login, register, unique_email

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "scrape-" + "m" * 40
SCRAPE = bearer(METRICS_TOKEN)
RULES = Path(__file__).parents[2] / "infra" / "prometheus" / "alerts.yml"
NEW_PASSWORD = "quarry-velvet-compass-ember-63"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def server(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    settings = {**NO_ADDRESS_LIMITS, "SHOP_METRICS_TOKEN": METRICS_TOKEN, "SHOP_LOG_FORMAT": "json"}
    with running_server(make_database(), tmp_path_factory.mktemp("ops"), settings) as running:
        yield running


def scrape(client: httpx.Client) -> Samples:
    answer = client.get("/metrics", headers=SCRAPE)
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_need_the_token(server: Server, client: httpx.Client) -> None:
    for headers in ({}, bearer("wrong"), {"Authorization": METRICS_TOKEN}):
        answer = client.get("/metrics", headers=headers)
        refused(answer, 401, "unauthenticated")
        assert answer.headers["www-authenticate"] == "Bearer"
    answer = client.get("/metrics", headers=SCRAPE)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "http_requests_total" in answer.text


def test_production_without_a_token_serves_no_metrics(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    production = {"environment": "production", "notify_email": "smtp", "notify_push": "off"}
    with in_process_app(make_database(), tmp_path, **production) as (app, _):
        answer = TestClient(app).get("/metrics")  # no startup: nothing behind it is needed
    refused(answer, 404, "not-found")


def test_requests_are_counted_by_route_template(server: Server, client: httpx.Client) -> None:
    before = scrape(client)
    missing = str(uuid.uuid4())
    for _ in range(3):
        assert client.get(f"/products/{missing}").status_code == 404
    assert client.get(f"/no/such/{missing}").status_code == 404
    assert client.post("/auth/register", json={"email": "x"}).status_code == 422
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    product = {"method": "GET", "route": "/products/{product_id}"}
    assert delta("http_requests_total", status="404", **product) == 3
    assert delta("http_request_duration_seconds_count", **product) == 3
    assert delta("http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("http_requests_total", method="POST", route="/auth/register", status="422") == 1
    assert all(missing not in str(labels) for _, labels in after)  # never the raw path
    assert delta("http_request_duration_seconds_bucket", le="+Inf", **product) == 3
    buckets = {dict(labels)["le"] for name, labels in after if name.endswith("seconds_bucket")}
    assert {"0.005", "0.2", "5.0"} <= buckets  # the 200 ms target is a bucket's bound
    assert value(after, "http_requests_in_flight") == 1  # the scrape itself


def test_the_request_id_is_kept_when_valid_and_made_otherwise(client: httpx.Client) -> None:
    kept = client.get("/health", headers={"X-Request-ID": "probe.123"})
    assert kept.headers["x-request-id"] == "probe.123"
    for given in ("x" * 129, "two words"):
        made = client.get("/no/such/page", headers={"X-Request-ID": given})
        assert re.fullmatch("[0-9a-f]{32}", made.headers["x-request-id"]), made.headers
    assert re.fullmatch("[0-9a-f]{32}", client.get("/metrics").headers["x-request-id"])


def test_business_counters_follow_a_checkout_a_decline_and_a_refund(
    server: Server, client: httpx.Client, cast: Cast
) -> None:
    before = scrape(client)
    shopper = cast.customer
    order_id, _ = confirmed_order(client, cast, shopper, price="30.00")
    written(
        client.post(
            f"/admin/orders/{order_id}/ship",
            json={"carrier": "UPS", "tracking_number": "1Z999AA10123456784"},
            headers=cast.admin,
        ),
        context="ordering,payments",
    )
    delivered = client.post(f"/admin/orders/{order_id}/deliver", headers=cast.admin)
    written(delivered, context="ordering")
    refund = {"amount": {"amount": "12.50", "currency": "EUR"}, "reason": "goodwill"}
    refunded = client.post(
        f"/admin/orders/{order_id}/refunds",
        json=refund,
        headers={**cast.admin, "Idempotency-Key": uuid.uuid4().hex},
    )
    written(refunded, 201, context="ordering,payments")
    product_id, _ = listed_product(client, cast, "10.00", stock=3)
    declined_id, position = place_order(
        client, shopper.headers, product_id, 1, "pm_card_chargeDeclined"
    )
    assert decided_order(client, shopper.headers, declined_id, position)["status"] == "rejected"

    expected = {
        ("eventshop_orders_placed_total", ()): 2,
        ("eventshop_orders_confirmed_total", ()): 1,
        ("eventshop_orders_rejected_total", (("reason", "payment_declined"),)): 1,
        (
            "eventshop_payments_declined_total",
            (("gateway", "sandbox"), ("code", "card_declined")),
        ): 1,
        ("eventshop_refunds_total", (("currency", "EUR"),)): 1,
        ("eventshop_refunded_amount_total", (("currency", "EUR"),)): 12.5,
    }

    def counted() -> Samples | None:  # the counts are cached a few seconds
        after = scrape(client)
        reached = all(
            value(after, name, **dict(labels)) - value(before, name, **dict(labels)) == count
            for (name, labels), count in expected.items()
        )
        return after if reached else None

    after = eventually(counted, "the business counters", timeout=20)
    for log in ("ordering", "payments", "inventory"):
        events = "eventshop_log_events_total"
        assert value(after, events, log=log) > value(before, events, log=log)


def _metric_names(node: Any) -> Iterator[str]:
    """Every metric a PromQL expression selects."""
    if isinstance(node, promql_parser.VectorSelector):
        yield str(node.name)
        return
    for child in ("lhs", "rhs", "expr", "vector_selector", "param"):
        if (found := getattr(node, child, None)) is not None:
            yield from _metric_names(found)
    for argument in getattr(node, "args", None) or ():
        yield from _metric_names(argument)


def _exported(client: httpx.Client) -> set[str]:
    """Every series name /metrics can answer, including those of families with no
    series yet (the relay's, outside the scaled mode)."""
    answer = client.get("/metrics", headers=SCRAPE)
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    for family in text_string_to_metric_families(answer.text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def test_the_alert_rules_parse_and_use_only_exported_metrics(client: httpx.Client) -> None:
    client.get("/health")  # at least one request: every request series exists
    rules = [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]
    alerts = {rule["alert"] for rule in rules}
    assert len(alerts) == len(rules) == 6
    exported = _exported(client)
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule
        assert rule["annotations"]["summary"], rule
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule
        names = set(_metric_names(promql_parser.parse(rule["expr"])))
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)


def test_log_lines_are_json_with_the_request_and_no_secret(
    server: Server, client: httpx.Client
) -> None:
    email = unique_email("logged")
    assert register(client, email, STRONG_PASSWORD, "Logged Tester").status_code == 201
    verify = server.mailed_token(client, email, VERIFY_SUBJECT)
    assert client.get("/verify-email", params={"token": verify}).status_code == 200
    assert client.post("/verify-email", data={"token": verify}).status_code == 200
    tokens = login(client, email, STRONG_PASSWORD).json()
    me = client.get(
        "/users/me", headers={**bearer(tokens["access_token"]), "X-Request-ID": "me-probe-1"}
    )
    assert me.status_code == 200
    user_id = me.json()["user_id"]
    assert client.post("/auth/password-reset", json={"email": email}).status_code == 202
    reset = server.mailed_token(client, email, RESET_SUBJECT)
    assert client.get("/reset-password", params={"token": reset}).status_code == 200
    confirm = {"token": reset, "new_password": NEW_PASSWORD}
    assert client.post("/auth/password-reset/confirm", json=confirm).status_code == 200
    assert login(client, email, NEW_PASSWORD).status_code == 200
    assert login(client, email, "wrong-" + NEW_PASSWORD).status_code == 401

    def logged() -> list[dict[str, Any]] | None:
        lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
        parsed = [json.loads(line) for line in lines]  # every line is one JSON object
        return parsed if any(p.get("request_id") == "me-probe-1" for p in parsed) else None

    lines = eventually(logged, "the access line of GET /users/me")
    text = server.log_path.read_text()
    secrets = [
        STRONG_PASSWORD,
        NEW_PASSWORD,
        verify,
        reset,
        tokens["access_token"],
        tokens["refresh_token"],
        METRICS_TOKEN,
    ]
    assert [secret for secret in secrets if secret in text] == []
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id", "principal"} <= set(line)
    (access,) = [line for line in lines if line["request_id"] == "me-probe-1"]
    assert access["logger"] == "eventshop.access"
    assert access["principal"] == user_id
    assert (access["method"], access["route"], access["status"]) == ("GET", "/users/me", 200)
    assert access["duration_ms"] > 0
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # its lines too

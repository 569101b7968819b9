"""The export's rows: the event's own fields as stable JSON (exact amounts, the
metadata kept out), and the actor as the shared contract gives it ("unknown" for
events stored before actors were recorded)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.export.schema import NAMES, PayloadNotEncodable, actor_columns, payload_json, row

WHEN = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


class Placed:
    """Stands for a domain event as the mapper gives it: attributes in ``__dict__``."""

    def __init__(self, **fields: Any) -> None:
        vars(self).update(fields)


def event(**own: Any) -> Placed:
    return Placed(originator_id=uuid4(), originator_version=3, timestamp=WHEN, **own)


def test_a_row_has_the_documented_columns_and_keeps_metadata_out_of_the_payload() -> None:
    placed = event(
        originator_topic="domain.orders:Order",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        total={"amount": "9.90", "currency": "EUR"},
        at=WHEN,
    )
    values = dict(
        zip(NAMES, row("ordering", 42, "domain.orders:Order.Placed", placed), strict=True)
    )
    assert values == {
        "position": 42,
        "log": "ordering",
        "aggregate_id": str(vars(placed)["originator_id"]),
        "aggregate_version": 3,
        "aggregate_type": "Order",
        "event_type": "Order.Placed",
        "topic": "domain.orders:Order.Placed",
        "time": WHEN,
        "actor_kind": "unknown",
        "actor_id": None,
        "actor_request_id": None,
        "actor_client_address": None,
        "payload": '{"at":"2026-12-07T09:30:00+00:00","total":{"amount":"9.90","currency":"EUR"}}',
    }


def test_credentials_are_left_out_of_the_payload() -> None:
    registered = event(email="ada@example.com", password_hash="$argon2id$v=19$...")
    assert orjson.loads(payload_json(vars(registered))) == {"email": "ada@example.com"}
    authenticating = event(payment_reference="pi_1", client_secret="pi_1_secret_x")
    assert orjson.loads(payload_json(vars(authenticating))) == {"payment_reference": "pi_1"}


def test_an_actor_fills_its_four_columns() -> None:
    actor = {"kind": "user", "id": "u-1", "request_id": "r-9", "client_address": "203.0.113.7"}
    assert actor_columns(actor) == ("user", "u-1", "r-9", "203.0.113.7")
    assert actor_columns({"kind": "system", "id": "checkout_saga"}) == (
        "system",
        "checkout_saga",
        None,
        None,
    )
    placed = event(actor=actor)
    assert "actor" not in orjson.loads(payload_json(vars(placed)))


@pytest.mark.parametrize("actor", [None, {}, {"kind": None}, "user", 7])
def test_without_a_usable_actor_it_is_unknown(actor: object) -> None:
    assert actor_columns(actor) == ("unknown", None, None, None)


def test_an_unknown_type_in_a_payload_is_refused_by_name() -> None:
    class Opaque:
        pass

    with pytest.raises(PayloadNotEncodable, match="Opaque"):
        payload_json({"secret": Opaque()})


amounts = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False)


@given(amount=amounts, ids=st.lists(st.uuids(), max_size=3), note=st.text(max_size=20))
def test_payloads_keep_amounts_exact_and_read_back_the_same(
    amount: Decimal, ids: list[UUID], note: str
) -> None:
    fields = {"amount": amount, "ids": ids, "note": note, "skus": {"B", "A"}}
    text = payload_json(fields)
    assert text == payload_json(dict(reversed(fields.items())))  # key order does not matter
    assert orjson.loads(text) == {
        "amount": str(amount),
        "ids": [str(each) for each in ids],
        "note": note,
        "skus": ["A", "B"],
    }

"""What the audit view shows of events and aggregates: any mix of the domain's values
becomes JSON, and no secret is ever shown, however deep it sits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.actors import ACTOR
from domain.carts import open_cart
from domain.money import Money
from domain.order_status import OrderStatus
from projections.audit.plain import REDACTED, SECRET_KEYS, aggregate_state, event_data, plain

SECRET = "s3cret-value-never-shown"


@dataclass(frozen=True)
class Point:
    x: Decimal
    at: datetime


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.uuids(),
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from(OrderStatus),
    st.builds(Money.of, st.decimals(min_value=0, max_value=10**6, places=2), st.just("EUR")),
    st.builds(Point, st.decimals(allow_nan=False, allow_infinity=False), st.datetimes()),
)
keys = st.one_of(st.text(max_size=8), st.sampled_from(sorted(SECRET_KEYS)))
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.frozensets(st.text(max_size=5), max_size=4),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=20,
)


def with_secrets(value: Any) -> Any:
    """``value`` with every secret key's value replaced by ``SECRET``."""
    if isinstance(value, dict):
        return {k: SECRET if k in SECRET_KEYS else with_secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [with_secrets(v) for v in value]
    return value


@settings(max_examples=200, deadline=None)
@given(values)
def test_anything_becomes_json_and_no_secret_shows(value: Any) -> None:
    shown = plain(with_secrets(value))
    text = json.dumps(shown, allow_nan=False)
    assert SECRET not in text
    assert json.loads(text) == shown  # already plain: JSON gives it back unchanged


def test_money_times_and_statuses_read_as_their_text() -> None:
    at = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    assert plain({"total": Money.of("12.50", "EUR"), "at": at, "status": OrderStatus.SHIPPED}) == {
        "total": {"amount": "12.50", "currency": "EUR"},
        "at": "2026-12-07T15:00:00+00:00",
        "status": "shipped",
    }


def test_an_events_data_leaves_out_what_its_entry_shows_apart() -> None:
    owner = uuid4()
    (opened,) = open_cart(owner).collect_events()
    vars(opened)[ACTOR] = {"kind": "user"}
    vars(opened)["traceparent"] = "00-abc-def-01"
    assert event_data(opened) == {"originator_topic": "domain.carts:Cart", "owner_id": str(owner)}


def test_an_aggregates_state_is_its_public_attributes() -> None:
    cart = open_cart(uuid4())
    state = aggregate_state(cart)
    assert not any(key.startswith("_") for key in state)
    assert state["lines"] == plain(cart.lines)
    assert plain({"password_hash": "argon2$..."}) == {"password_hash": REDACTED}

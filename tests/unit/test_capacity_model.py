"""The capacity model's arithmetic (``bench.load.capacity``): the mix's request
shares, a pair's cost less its first request, and the predicted rate."""

from __future__ import annotations

import dataclasses

import pytest

from bench.load.capacity import KINDS, KindCost, minus, predict, request_shares
from bench.load.mix import Mix


def cost(kind: str, server: float, projections: float = 0.0, postgres: float = 0.0) -> KindCost:
    return KindCost(kind, 100, 0, server, projections, postgres, 0.5, 10.0, 20.0)


def test_shares_are_of_the_measured_kinds_and_add_up_to_one() -> None:
    shares = request_shares(Mix(), journeys=5_000)
    assert set(shares) <= set(KINDS)
    assert sum(shares.values()) == pytest.approx(1.0)
    # Every session lands on a browse page; few check out.
    assert shares["listing"] > shares["checkout"] > 0


def test_shares_follow_the_mix() -> None:
    browsing = request_shares(Mix(), journeys=5_000)
    buying = request_shares(dataclasses.replace(Mix(), add_to_cart=0.5, checkout=0.5), 5_000)
    assert buying["checkout"] > 5 * browsing["checkout"]


def test_a_pair_less_its_first_request_leaves_the_second() -> None:
    # A cart line (1 ms) and a checkout (9 ms) measured together: 5 ms per request.
    pair = cost("checkout", 5.0, 3.0, 1.0)
    cart_line = cost("cart_add", 1.0, 0.5, 0.5)
    checkout = minus(pair, cart_line, "checkout")
    assert (checkout.server_ms, checkout.projections_ms, checkout.postgres_ms) == (9.0, 5.5, 1.5)
    assert checkout.system_ms == pytest.approx(16.0)


def test_the_prediction_divides_the_cores_by_the_mean_cost() -> None:
    costs = {"listing": cost("listing", 2.0), "checkout": cost("checkout", 20.0)}
    shares = {"listing": 0.9, "checkout": 0.1}
    prediction = predict(costs, shares, cores=2, utilisation=0.8)
    assert prediction.mean_system_ms == pytest.approx(3.8)  # 0.9 * 2 + 0.1 * 20
    assert prediction.rate == pytest.approx(1600 / 3.8)
    assert prediction.rate_beside_generator == pytest.approx(1600 / 4.3)


def test_the_idle_baseline_is_charged_once_not_per_request() -> None:
    costs = {"product": cost("product", 1.0)}
    idle = predict(costs, {"product": 1.0}, cores=2, utilisation=1.0, idle_cores=0.5)
    assert idle.rate == pytest.approx(1500.0)  # 2 cores less 0.5, at 1 ms a request

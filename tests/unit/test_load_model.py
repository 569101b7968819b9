"""The pure parts of the shoppers' load generator (bench/load): the mix's sampling,
the rates derived from a run's targets, the percentile and interval figures, and
the open-model scheduler's timing."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import pytest

from bench.load.mix import Mix, journey, plan
from bench.load.schedule import arrivals, open_model
from bench.load.stats import Samples, intervals, merge_all, overall, summarise, window

SESSIONS = 40_000


def _sample(mix: Mix, seed: int = 7) -> tuple[list[tuple[bool, list[str]]], int]:
    rng = random.Random(seed)
    sessions = []
    for _ in range(SESSIONS):
        remembered, steps = journey(rng, mix)
        sessions.append((remembered, [s.kind for s in steps]))
    return sessions, SESSIONS


def test_the_sampled_sessions_honour_the_mix_ratios() -> None:
    mix = Mix()
    sessions, n = _sample(mix)
    share = Counter()  # type: ignore[var-annotated]
    for remembered, kinds in sessions:
        share["cart"] += "cart_add" in kinds
        share["checkout"] += "checkout" in kinds
        share["history"] += "orders" in kinds
        share["stream"] += "stream" in kinds
        share["login"] += "login" in kinds
        share["remembered"] += remembered
    assert share["cart"] / n == pytest.approx(mix.add_to_cart, abs=0.006)
    assert share["checkout"] / n == pytest.approx(mix.checkout, abs=0.003)
    assert share["history"] / n == pytest.approx(mix.order_history, abs=0.004)
    assert share["stream"] / n == pytest.approx(mix.signed_in, abs=0.008)
    logins = mix.needs_account * (1 - mix.remembered)
    assert share["login"] / n == pytest.approx(logins, abs=0.005)
    requests = sum(len(k) + k.count("stream") for _, k in sessions) / n
    assert requests == pytest.approx(mix.expected_requests(), rel=0.02)


def test_a_session_is_signed_in_before_its_personal_steps() -> None:
    sessions, _ = _sample(Mix(), seed=3)
    for remembered, kinds in sessions:
        personal = [i for i, k in enumerate(kinds) if k in {"cart_add", "cart", "checkout"}]
        if not personal:
            continue
        if remembered:
            assert kinds[0] == "stream"
        else:
            assert kinds.index("login") < personal[0]
            assert kinds.index("stream") == kinds.index("login") + 1
        if "checkout" in kinds:
            assert kinds.index("cart") == kinds.index("checkout") - 1


def test_the_first_step_has_no_think_time_and_the_others_average_the_mean() -> None:
    rng = random.Random(11)
    mix = Mix(think_s=4.0)
    thinks = []
    for _ in range(5_000):
        _, steps = journey(rng, mix)
        assert steps[0].think_s == 0.0
        thinks += [s.think_s for s in steps[1:] if s.kind != "stream"]
    # exponential capped at 4x the mean: the mean drops by e^-4 of it
    assert sum(thinks) / len(thinks) == pytest.approx(4.0 * (1 - 2.718281828**-4), rel=0.03)


def test_the_plan_meets_the_rate_the_orders_and_the_users_asked_for() -> None:
    chosen = plan(Mix(), rate=1_000, users=10_000, orders_per_minute=1_000)
    assert chosen.requests_per_s == pytest.approx(1_000, rel=1e-6)
    assert chosen.orders_per_min == pytest.approx(1_000, rel=1e-3)
    assert chosen.concurrent_users == pytest.approx(10_000, rel=1e-6)
    # the abandoned carts stay at the default's count
    assert chosen.mix.add_to_cart - chosen.mix.checkout == pytest.approx(0.09 - 0.025)
    default = plan(Mix(), rate=100, users=None, orders_per_minute=None)
    assert default.mix == Mix()


def test_a_mix_file_overrides_the_defaults(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "mix.json"
    path.write_text('{"add_to_cart": 0.2, "details": [2, 2]}')
    mix = Mix.load(path)
    assert mix.add_to_cart == 0.2 and mix.details == (2, 2) and mix.checkout == Mix().checkout
    path.write_text('{"add_to_kart": 0.2}')
    with pytest.raises(ValueError, match="unknown"):
        Mix.load(path)


# --- figures ------------------------------------------------------------------------


def _samples(values: list[float], start: float = 100.0, ok: bool = True) -> Samples:
    s = Samples()
    for i, ms in enumerate(values):
        due = start + i * 0.1
        s.add(due + ms / 1000, ms, 0.5, ok, 200 if ok else 500)
    return s


def test_percentiles_count_every_request_and_errors_separately() -> None:
    s = _samples([float(v) for v in range(1, 101)])
    s.failed(200.0, 60_000.0, 0.0, "TimeoutError")
    summary = summarise(s, seconds=10.0)
    assert summary.count == 101 and summary.errors == 1 and summary.rate == 10.1
    assert summary.p50 == 51.0
    assert summary.p99 == pytest.approx(100.0)
    assert summary.max == 60_000.0
    assert s.outcomes() == {"200": 100, "TimeoutError": 1}


def test_merging_keeps_every_sample_of_every_process() -> None:
    a, b = (
        {"listing": _samples([1.0, 2.0])},
        {"listing": _samples([3.0]), "search": _samples([4.0])},
    )
    merged = merge_all([a, b])
    assert sorted(merged["listing"].ms) == [1.0, 2.0, 3.0]
    assert len(overall(merged)) == 4


def test_intervals_and_window_go_by_the_intended_send_time() -> None:
    s = Samples()
    start = 1_000.0
    for due, ms in ((start + 1, 10.0), (start + 9.999, 5_000.0), (start + 12, 20.0)):
        s.add(due + ms / 1000, ms, 0.0, True, 200)
    rows = intervals(s, start, start + 20, width=10.0)
    assert [r.count for r in rows] == [2, 1]
    assert rows[0].p95 == pytest.approx(10 + 0.95 * 4_990)
    assert len(window(s, start + 5, start + 20)) == 2  # the slow one was due at 9.999


# --- the open-model scheduler --------------------------------------------------------


def test_arrivals_fixed_and_poisson() -> None:
    assert arrivals(4, 1.0, random.Random(1), poisson=False) == [0.0, 0.25, 0.5, 0.75]
    offsets = arrivals(50, 400, random.Random(1))
    assert len(offsets) / 400 == pytest.approx(50, rel=0.02)
    assert offsets == sorted(offsets) and offsets[0] >= 0 and offsets[-1] < 400


def test_sessions_start_at_their_intended_times_whatever_the_earlier_ones_do() -> None:
    async def scenario() -> list[tuple[float, float]]:
        started: list[tuple[float, float]] = []

        async def slow_session(i: int, due: float) -> None:
            started.append((due, time.monotonic()))
            await asyncio.sleep(0.3)  # a slow server: the next sessions must not wait

        start = time.monotonic() + 0.02
        late = await open_model([i * 0.01 for i in range(30)], start, slow_session)
        assert len(late) == 30
        return started

    started = asyncio.run(scenario())
    assert len(started) == 30
    lateness = sorted(actual - due for due, actual in started)
    assert lateness[0] >= 0
    assert lateness[len(lateness) // 2] < 0.02  # a loaded CI machine: a loose bound
    first_due, last_due = started[0][0], started[-1][0]
    assert last_due - first_due == pytest.approx(0.29)

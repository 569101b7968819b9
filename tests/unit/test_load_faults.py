"""The pure parts of the load generator's faults (bench/load/faults.py): the
``--fault`` schedule, the per-second buckets and the recovery times over them, and
the fault window's error rate."""

from __future__ import annotations

import pytest

from bench.load.faults import (
    DEFAULT_DOWN_S,
    Fault,
    Second,
    fault_window,
    parse_fault,
    parse_faults,
    recovery,
    seconds_from,
)
from bench.load.shoppers import lost
from bench.load.stats import Samples


def test_a_fault_is_a_kind_a_time_and_an_optional_downtime() -> None:
    assert parse_fault("kill-projections@30") == Fault("kill-projections", 30.0, DEFAULT_DOWN_S)
    assert parse_fault(" restart-redis@12.5+4 ") == Fault("restart-redis", 12.5, 4.0)
    assert str(parse_fault("kill-api@30+0")) == "kill-api@30+0"


@pytest.mark.parametrize(
    "text",
    ["kill-api", "kill-api@", "reboot@30", "kill-api@soon", "kill-api@30+x", "kill-api@-1", "@3"],
)
def test_a_malformed_fault_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fault(text)


def test_faults_come_repeated_or_as_lists_in_time_order_inside_the_window() -> None:
    faults = parse_faults(["kill-api@60,restart-redis@10", "kill-projections@30"], 90)
    assert [(f.kind, f.at_s) for f in faults] == [
        ("restart-redis", 10),
        ("kill-projections", 30),
        ("kill-api", 60),
    ]
    assert parse_faults([], 90) == []
    with pytest.raises(ValueError, match="after the measured window"):
        parse_faults(["kill-api@90"], 90)


def _samples(rows: list[tuple[float, float, bool]]) -> Samples:
    """(due time, latency ms, ok) rows."""
    out = Samples()
    for due, ms, ok in rows:
        out.add(due + ms / 1000, ms, 0.0, ok, 200 if ok else 0)
    return out


def test_seconds_are_bucketed_by_due_time_from_the_fault() -> None:
    by_kind = {
        "listing": _samples([(99.5, 10, True), (100.2, 3000, True), (100.9, 5, False)]),
        "checkout": _samples([(101.1, 20, True), (103.0, 20, True)]),
    }
    seconds = seconds_from(by_kind, 100.0, 103.5)
    assert len(seconds) == 4
    assert seconds[0].sent == {"listing": 2} and seconds[0].failed == {"listing": 1}
    assert seconds[1].sent == {"checkout": 1} and seconds[1].clean
    assert seconds[2].sent == {} and not seconds[2].clean  # nothing sent: not "answered"
    assert seconds[3].clean


def _second(sent: int, failed: int, p95: float) -> Second:
    return Second({"listing": sent}, {"listing": failed}, p95)


def test_recovery_is_the_first_of_three_clean_seconds_then_of_three_fast_ones() -> None:
    seconds = [
        _second(40, 40, 2.0),  # refused at once: fast, but failing
        _second(40, 12, 900.0),
        _second(0, 0, float("nan")),  # nothing sent: not clean
        _second(40, 0, 1500.0),  # clean but followed by an error: not recovered yet
        _second(40, 1, 150.0),
        _second(40, 0, 1200.0),  # clean from here on, the backlog still slow
        _second(40, 0, 300.0),
        _second(40, 0, 150.0),
        _second(40, 0, 120.0),
        _second(40, 0, 110.0),
        _second(40, 0, 90.0),
    ]
    assert recovery(seconds) == (5, 7)
    assert recovery(seconds, p95_bound_ms=2000.0) == (5, 5)
    assert recovery(seconds, hold=1) == (3, 7)


def test_a_fault_whose_errors_come_a_moment_later_is_not_recovered_at_once() -> None:
    seconds = [_second(40, 0, 20.0), _second(40, 1, 20.0), *[_second(40, 0, 20.0)] * 4]
    assert recovery(seconds) == (2, 2)


def test_no_recovery_is_counted_before_the_process_is_back() -> None:
    # errors at 5 and 8 while the killed process is down (back after 11.2 s)
    seconds = [_second(40, 1 if k in (5, 8) else 0, 20.0) for k in range(20)]
    assert recovery(seconds, back_s=11.2) == (9, 9)
    assert recovery(seconds) == (0, 0)  # back at once: the first 3 seconds are clean
    clean = [_second(40, 0, 20.0)] * 20
    assert recovery(clean, back_s=11.2) == (0, 0)  # nothing failed at all
    assert recovery(seconds[:10], back_s=15.0) == (None, None)  # not back in the window


def test_a_fault_without_errors_recovers_at_once_and_one_never_over_says_so() -> None:
    assert recovery([_second(10, 0, 50.0)] * 5) == (0, 0)
    assert recovery([_second(10, 0, 50.0)]) == (0, 0)  # fewer seconds left than the hold
    assert recovery([_second(10, 0, 500.0)] * 5) == (0, None)
    assert recovery([_second(10, 3, 50.0), _second(10, 1, 50.0)]) == (None, None)
    assert recovery([]) == (None, None)


def test_the_window_counts_what_was_in_flight_when_the_fault_struck() -> None:
    by_kind = {
        "cart": _samples([(98.0, 10, True), (99.8, 400, False), (100.5, 5, False)]),
        "product": _samples([(100.2, 5, True), (101.0, 5, True), (104.0, 5, False)]),
    }
    window = fault_window(by_kind, 100.0, 102.0)
    assert window.seconds == 2.0
    assert window.sent == {"cart": 2, "product": 2}
    assert window.failed == {"cart": 2, "product": 0}
    assert window.error_rate == pytest.approx(0.5)


def test_a_checkout_answer_is_lost_when_it_says_nothing_of_the_order() -> None:
    assert lost(None)
    assert lost((502, b""))
    assert lost((429, b"{}"))
    assert lost((409, b'{"code":"request-in-progress"}'))
    assert not lost((409, b'{"code":"prices-changed"}'))
    assert not lost((202, b'{"id":"x"}'))
    assert not lost((422, b"{}"))

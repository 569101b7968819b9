"""The deliverer's backoff between retries of a transient failure: full jitter
(AWS's advice), uniform between no wait and the attempt's exponential bound, which
the cap limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from commands.notifications.delivery import Backoff

attempts = st.integers(min_value=1, max_value=20)
bases = st.floats(min_value=0.01, max_value=60)
caps = st.floats(min_value=0.01, max_value=3600)


@given(attempt=attempts, base=bases, cap=caps)
def test_a_delay_is_never_more_than_the_attempts_bound_nor_the_cap(
    attempt: int, base: float, cap: float
) -> None:
    backoff = Backoff(base_seconds=base, cap_seconds=cap)
    assert 0 <= backoff.delay(attempt) <= min(cap, base * 2**attempt)


@given(attempt=attempts)
def test_delays_are_spread_over_the_whole_bound(attempt: int) -> None:
    """Jittered, not fixed: retries of many deliveries failing at once spread out
    (the chance that 200 uniform draws miss either quarter is below 1e-24)."""
    backoff = Backoff()
    bound = min(backoff.cap_seconds, backoff.base_seconds * 2**attempt)
    delays = [backoff.delay(attempt) for _ in range(200)]
    assert min(delays) < bound / 4
    assert max(delays) > bound * 3 / 4

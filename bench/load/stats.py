"""Latency samples per request kind, kept exactly (sorted at the end, not bucketed):
at 1,000 requests/s for 10 minutes that is 600,000 samples, about 17 MB in
``array``s, cheap to send between processes."""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench._common import percentile

NO_ANSWER = 0
"""The status of a request that got no answer (connection error, timeout)."""


@dataclass
class Samples:
    """One kind's requests: when each ended (monotonic s), its latency from its
    intended send time (ms), how late the generator sent it (ms), its status
    (``NO_ANSWER`` when none came) and whether it succeeded; and, for those without
    an answer, why (exception names)."""

    at: array[float] = field(default_factory=lambda: array("d"))
    ms: array[float] = field(default_factory=lambda: array("d"))
    late_ms: array[float] = field(default_factory=lambda: array("d"))
    status: array[int] = field(default_factory=lambda: array("H"))
    ok: array[int] = field(default_factory=lambda: array("b"))
    failures: Counter[str] = field(default_factory=Counter)

    def add(self, at: float, ms: float, late_ms: float, ok: bool, status: int) -> None:
        self.at.append(at)
        self.ms.append(ms)
        self.late_ms.append(late_ms)
        self.status.append(status)
        self.ok.append(1 if ok else 0)

    def failed(self, at: float, ms: float, late_ms: float, why: str) -> None:
        self.add(at, ms, late_ms, False, NO_ANSWER)
        self.failures[why] += 1

    def merge(self, other: Samples) -> None:
        self.at.extend(other.at)
        self.ms.extend(other.ms)
        self.late_ms.extend(other.late_ms)
        self.status.extend(other.status)
        self.ok.extend(other.ok)
        self.failures.update(other.failures)

    def __len__(self) -> int:
        return len(self.at)

    @property
    def errors(self) -> int:
        return len(self.ok) - sum(self.ok)

    def outcomes(self) -> dict[str, int]:
        counts = Counter(str(s) for s in self.status if s != NO_ANSWER)
        counts.update(self.failures)
        return dict(sorted(counts.items()))


def merge_all(parts: list[dict[str, Samples]]) -> dict[str, Samples]:
    out: dict[str, Samples] = {}
    for part in parts:
        for kind, samples in part.items():
            out.setdefault(kind, Samples()).merge(samples)
    return out


def overall(by_kind: dict[str, Samples]) -> Samples:
    """Every kind's samples together."""
    total = Samples()
    for samples in by_kind.values():
        total.merge(samples)
    return total


def window(samples: Samples, start: float, end: float) -> Samples:
    """The requests due in [start, end) (due = end time - latency): the measured part
    of a run, without its warm-up. (Failure reasons are kept whole: they carry no
    time of their own.)"""
    out = Samples(failures=Counter(samples.failures))
    rows = zip(samples.at, samples.ms, samples.late_ms, samples.status, samples.ok, strict=True)
    for at, ms, late, status, ok in rows:
        if start <= at - ms / 1000 < end:
            out.add(at, ms, late, bool(ok), status)
    return out


@dataclass(frozen=True)
class Summary:
    count: int
    errors: int
    """Requests not answered as the step expects (non-2xx, or no answer)."""
    rate: float
    p50: float
    p95: float
    p99: float
    max: float
    late_p99: float
    """How late the generator sent them (its own share of the latency), p99 ms."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarise(samples: Samples, seconds: float) -> Summary:
    """Percentiles over every request (errors included: a fast 500 still took that
    long, and a failure took until it failed)."""
    ordered = sorted(samples.ms)
    count = len(samples)
    return Summary(
        count=count,
        errors=samples.errors,
        rate=count / seconds if seconds > 0 else 0.0,
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1] if ordered else float("nan"),
        late_p99=percentile(samples.late_ms, 99),
    )


@dataclass(frozen=True)
class Interval:
    start_s: float
    """Seconds from the run's start."""
    count: int
    rate: float
    p95: float


def intervals(samples: Samples, start: float, end: float, width: float = 10.0) -> list[Interval]:
    """Requests per ``width``-second interval of [start, end), by due time: the
    throughput and p95 of each (nan for an interval without requests)."""
    n_buckets = max(1, -int(-(end - start) // width))
    buckets: list[list[float]] = [[] for _ in range(n_buckets)]
    for at, ms in zip(samples.at, samples.ms, strict=True):
        n = int((at - ms / 1000 - start) // width)
        if 0 <= n < n_buckets:
            buckets[n].append(ms)
    return [
        Interval(n * width, len(b), len(b) / width, percentile(b, 95))
        for n, b in enumerate(buckets)
    ]

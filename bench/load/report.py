"""The run's figures: per kind and overall (count, rate, errors, p50/p95/p99/max),
per 10-second interval (throughput and p95 per kind), the generator's own health;
a markdown report, a JSON of the raw figures and an SVG chart (pygal) in ``--out``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygal
from pygal.style import CleanStyle

from bench._common import CpuShares, Table, fmt, percentile
from bench.load.mix import KINDS, Plan
from bench.load.stats import Samples, intervals, overall, summarise, window

INTERVAL_S = 10.0


@dataclass
class Figures:
    """What the report is made of (the JSON holds all of it)."""

    machine: list[str]
    plan: Plan
    duration: float
    by_kind: dict[str, Samples]
    start: float
    end: float
    cpu: CpuShares
    generator_cores: float
    lag_ms: list[float]
    session_late_ms: list[float]
    lag_bound_ms: float
    counters: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def measured(self) -> dict[str, Samples]:
        return {k: window(s, self.start, self.end) for k, s in self.by_kind.items()}

    @property
    def lag_p99(self) -> float:
        return percentile(self.lag_ms, 99)

    @property
    def valid(self) -> bool:
        late = overall(self.measured).late_ms
        return self.lag_p99 <= self.lag_bound_ms and percentile(late, 99) <= self.lag_bound_ms


def _ordered(kinds: dict[str, Samples]) -> list[str]:
    return [k for k in KINDS if k in kinds] + sorted(set(kinds) - set(KINDS))


def _jsonable(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def summary_table(figures: Figures) -> str:
    measured = figures.measured
    rows = []
    for kind in [*_ordered(measured), "all"]:
        samples = overall(measured) if kind == "all" else measured[kind]
        s = summarise(samples, figures.duration)
        name = f"**{kind}**" if kind == "all" else kind
        rows.append(
            [
                name,
                f"{s.count:,}",
                fmt(s.rate),
                f"{s.errors:,}",
                *(fmt(v) for v in (s.p50, s.p95, s.p99, s.max)),
                fmt(s.late_p99),
                ", ".join(f"{k}: {v}" for k, v in samples.outcomes().items()),
            ]
        )
    headers = ["kind", "count", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    return Table([*headers, "gen late p99 ms", "outcomes"], rows).markdown()


def interval_table(figures: Figures) -> str:
    measured = figures.measured
    kinds = _ordered(measured)
    per = {k: intervals(measured[k], figures.start, figures.end, INTERVAL_S) for k in kinds}
    total = intervals(overall(measured), figures.start, figures.end, INTERVAL_S)
    rows = []
    for n, whole in enumerate(total):
        cells = [f"{whole.start_s:.0f}", fmt(whole.rate, 0), fmt(whole.p95, 0)]
        cells += [f"{fmt(per[k][n].rate, 1)} / {fmt(per[k][n].p95, 0)}" for k in kinds]
        rows.append(cells)
    headers = ["t s", "all req/s", "all p95 ms", *(f"{k} req/s / p95" for k in kinds)]
    return Table(headers, rows).markdown()


def markdown(figures: Figures) -> str:
    plan, cpu = figures.plan, figures.cpu
    verdict = "valid" if figures.valid else "**INVALID** (the generator was late)"
    lines = ["# Shoppers' load (bench.load.run)", "", *figures.machine]
    lines += [
        f"- plan: {plan.sessions_per_s:.2f} sessions/s, {plan.requests_per_s:.0f} req/s, "
        f"{plan.orders_per_min:.0f} orders/min expected, ~{plan.concurrent_users:,.0f} "
        f"concurrent sessions (Little's law); measured {figures.duration:g} s after the warm-up",
        *(f"- {note}" for note in [*plan.notes, *figures.notes]),
        f"- generator: {', '.join(f'{k} {v:,}' for k, v in figures.counters.items())}",
        f"- CPU (cores): generator {figures.generator_cores:.2f}, server {cpu.server:.2f}, "
        f"postgres {cpu.postgres:.2f}, other {cpu.other:.2f}",
        f"- generator loop lag p50/p99/max {fmt(percentile(figures.lag_ms, 50))}/"
        f"{fmt(figures.lag_p99)}/{fmt(max(figures.lag_ms, default=float('nan')))} ms, "
        f"sessions started late p99 {fmt(percentile(figures.session_late_ms, 99))} ms "
        f"(bound {figures.lag_bound_ms:g} ms): run {verdict}",
        "",
        "## Per kind (requests due in the measured window; latency from the intended send time)",
        "",
        summary_table(figures),
        "",
        f"## Per {INTERVAL_S:g}-second interval",
        "",
        interval_table(figures),
    ]
    return "\n".join(lines)


def raw(figures: Figures) -> dict[str, Any]:
    measured = figures.measured
    kinds = _ordered(measured)
    return {
        "machine": figures.machine,
        "mix": figures.plan.mix.as_dict(),
        "plan": {
            "sessions_per_s": figures.plan.sessions_per_s,
            "requests_per_s": figures.plan.requests_per_s,
            "orders_per_min": figures.plan.orders_per_min,
            "concurrent_users": figures.plan.concurrent_users,
            "notes": figures.plan.notes,
        },
        "duration_s": figures.duration,
        "valid": figures.valid,
        "cpu_cores": {
            "generator": figures.generator_cores,
            "server": figures.cpu.server,
            "postgres": figures.cpu.postgres,
            "other": figures.cpu.other,
        },
        "generator": {
            **figures.counters,
            "loop_lag_p99_ms": _jsonable(figures.lag_p99),
            "loop_lag_max_ms": max(figures.lag_ms, default=None),
            "session_late_p99_ms": _jsonable(percentile(figures.session_late_ms, 99)),
            "lag_bound_ms": figures.lag_bound_ms,
        },
        "kinds": {
            k: {
                **{
                    key: _jsonable(v) for key, v in summarise(s, figures.duration).as_dict().items()
                },
                "outcomes": s.outcomes(),
            }
            for k, s in [*((k, measured[k]) for k in kinds), ("all", overall(measured))]
        },
        "intervals": {
            k: [
                {"t": i.start_s, "count": i.count, "rate": i.rate, "p95": _jsonable(i.p95)}
                for i in intervals(s, figures.start, figures.end, INTERVAL_S)
            ]
            for k, s in [*((k, measured[k]) for k in kinds), ("all", overall(measured))]
        },
        "notes": figures.notes,
    }


def chart(figures: Figures, path: Path) -> None:
    """Two charts in one SVG file each: p95 per kind over time (with the overall
    p50/p99), and throughput per kind over time."""
    measured = figures.measured
    kinds = _ordered(measured)
    whole = overall(measured)
    total = intervals(whole, figures.start, figures.end, INTERVAL_S)
    labels = [f"{i.start_s:.0f}" for i in total]

    def line(title: str, y_title: str) -> Any:
        c = pygal.Line(
            title=title,
            x_title="seconds",
            y_title=y_title,
            style=CleanStyle,
            width=1100,
            height=550,
            show_dots=len(labels) <= 60,
            logarithmic=y_title == "ms",
            legend_at_bottom=True,
        )
        c.x_labels = labels
        return c

    latency = line("Latency per 10 s (from the intended send time)", "ms")
    for q in (50, 99):
        per = _percentile_per_interval(whole, figures.start, len(total), q)
        latency.add(f"all p{q}", [_positive(v) for v in per])
    latency.add("all p95", [_positive(i.p95) for i in total])
    for k in kinds:
        rows = intervals(measured[k], figures.start, figures.end, INTERVAL_S)
        latency.add(f"{k} p95", [_positive(i.p95) for i in rows])
    latency.render_to_file(str(path / "latency.svg"))
    rate = line("Throughput per 10 s", "requests/s")
    rate.add("all", [i.rate for i in total])
    for k in kinds:
        rows = intervals(measured[k], figures.start, figures.end, INTERVAL_S)
        rate.add(k, [i.rate for i in rows])
    rate.render_to_file(str(path / "throughput.svg"))


def _positive(value: float) -> float | None:
    return None if math.isnan(value) or value <= 0 else value


def _percentile_per_interval(samples: Samples, start: float, count: int, q: float) -> list[float]:
    buckets: list[list[float]] = [[] for _ in range(count)]
    for at, ms in zip(samples.at, samples.ms, strict=True):
        n = int((at - ms / 1000 - start) // INTERVAL_S)
        if 0 <= n < count:
            buckets[n].append(ms)
    return [percentile(b, q) for b in buckets]


def write(figures: Figures, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(figures)
    (out / "report.md").write_text(text + "\n")
    (out / "figures.json").write_text(json.dumps(raw(figures), indent=1, default=str) + "\n")
    chart(figures, out)
    return text

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
    faults: list[dict[str, Any]] = field(default_factory=list)
    """Per fault (``bench.load.faults.figures``): its window's errors, its recovery."""
    audit: dict[str, Any] | None = None
    """``bench.load.settle.Audit.as_dict``: nothing lost, nothing doubled."""

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


def _seconds(value: float | None) -> str:
    return "never (in the window)" if value is None else f"{value:g} s"


def fault_table(figures: Figures) -> str:
    rows = []
    for f in figures.faults:
        by_kind = ", ".join(
            f"{k} {f['failed'][k]}/{n}" for k, n in f["sent"].items() if f["failed"].get(k)
        )
        back = f["back_after_s"]
        rows.append(
            [
                f["fault"],
                f"{f['at_s']:g}",
                "never" if back is None else f"{back:.1f}",
                f"{f['window_s']:.1f}",
                f"{sum(f['failed'].values()):,} / {sum(f['sent'].values()):,}",
                f"{f['error_rate']:.1%}",
                by_kind or "none",
                _seconds(f["errors_recovered_after_s"]),
                _seconds(f["p95_recovered_after_s"]),
            ]
        )
    headers = ["fault", "at s", "back after s", "window s", "failed / sent", "error rate"]
    headers += ["failed by kind", "no errors after", "p95 < 200 ms after"]
    return Table(headers, rows).markdown()


def audit_lines(audit: dict[str, Any]) -> list[str]:
    verdict = "**clean**" if audit["clean"] else "**NOT CLEAN**"
    return [
        f"- {verdict}: {audit['accepted']:,} checkouts answered 202; lost "
        f"{audit['lost']:,}, the same order answered twice {audit['accepted_twice']:,}, "
        f"placed twice {audit['placed_twice']:,}, decided twice {audit['decided_twice']:,}, "
        f"undecided {audit['undecided']:,}, captured twice {audit['captured_twice']:,}, "
        f"gateway payments captured over their authorization {audit['overcaptured']:,}",
        f"- orders placed whose 202 no shopper saw (answer lost, retries given up): "
        f"{audit['placed_unanswered']:,}",
        "- read models at their logs' heads: "
        + ("all" if not audit["lagging"] else "**behind**: " + ", ".join(audit["lagging"])),
    ]


def _cpu_line(figures: Figures) -> str:
    cpu = figures.cpu
    if figures.faults:  # a killed process's CPU and backends leave the sums mid-run
        return (
            f"- CPU (cores): generator {figures.generator_cores:.2f}; the server's and "
            "Postgres's not measured in a fault run (processes and backends restarted)"
        )
    return (
        f"- CPU (cores): generator {figures.generator_cores:.2f}, server {cpu.server:.2f}, "
        f"postgres {cpu.postgres:.2f}, other {cpu.other:.2f}"
    )


def markdown(figures: Figures) -> str:
    plan = figures.plan
    verdict = "valid" if figures.valid else "**INVALID** (the generator was late)"
    lines = ["# Shoppers' load (bench.load.run)", "", *figures.machine]
    lines += [
        f"- plan: {plan.sessions_per_s:.2f} sessions/s, {plan.requests_per_s:.0f} req/s, "
        f"{plan.orders_per_min:.0f} orders/min expected, ~{plan.concurrent_users:,.0f} "
        f"concurrent sessions (Little's law); measured {figures.duration:g} s after the warm-up",
        *(f"- {note}" for note in [*plan.notes, *figures.notes]),
        f"- generator: {', '.join(f'{k} {v:,}' for k, v in figures.counters.items())}",
        _cpu_line(figures),
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
    if figures.faults:
        lines += [
            "",
            "## Faults (seconds from the fault; the window lasts until the process is "
            "back and the first of 3 seconds in a row answered without errors)",
            "",
            fault_table(figures),
        ]
    if figures.audit is not None:
        lines += ["", "## Nothing lost, nothing doubled (after the run)", ""]
        lines += audit_lines(figures.audit)
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
        "faults": figures.faults,
        "audit": figures.audit,
    }


def chart(figures: Figures, path: Path) -> None:
    """Two charts in one SVG file each: p95 per kind over time (with the overall
    p50/p99), and throughput per kind over time."""
    measured = figures.measured
    kinds = _ordered(measured)
    whole = overall(measured)
    total = intervals(whole, figures.start, figures.end, INTERVAL_S)
    labels = [f"{i.start_s:.0f}" for i in total]
    for f in figures.faults:  # the fault's interval is labelled with it
        n = int(f["at_s"] // INTERVAL_S)
        if 0 <= n < len(labels):
            labels[n] += f" ({f['fault'].split('@')[0]} @{f['at_s']:g})"

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

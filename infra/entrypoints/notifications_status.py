"""``shop notifications status``: per channel, the deliveries waiting (queued,
retrying, sending), how many are due now and how long the oldest has waited, what
the last hour came to, and the latest failures. Read from the database (and the
queue's own depth: SQS's, in the scaled mode), so every process agrees."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from rich.console import Console
from rich.table import Table

from commands.notifications.ports import DeliveryQueue
from domain.notifications import Channel

RECENT_FAILURES = 5
_WAITING = ("queued", "retrying", "sending")
_OUTCOMES = ("sent", "failed", "suppressed")

# "Due now" is what a worker would take: due, and not leased by a worker already.
_WAITING_SQL = """
SELECT channel,
       count(*) FILTER (WHERE state = 'queued') AS queued,
       count(*) FILTER (WHERE state = 'retrying') AS retrying,
       count(*) FILTER (WHERE state = 'sending') AS sending,
       count(*) FILTER (WHERE due) AS due_now,
       extract(epoch FROM now() - min(not_before) FILTER (WHERE due)) AS oldest_due_seconds
FROM (SELECT channel, state, not_before,
             not_before <= now() AND (leased_until IS NULL OR leased_until < now()) AS due
      FROM notify.deliveries WHERE state IN ('queued', 'retrying', 'sending')) waiting
GROUP BY channel
"""
# Attempts, not deliveries' states: a delivery resent and sent counts its failure too.
_LAST_HOUR_SQL = """
SELECT d.channel, a.outcome, count(*)
FROM notify.attempts a JOIN notify.deliveries d ON d.id = a.delivery_id
WHERE a.finished_at > now() - interval '1 hour' AND a.outcome IN ('sent', 'failed', 'suppressed')
GROUP BY d.channel, a.outcome
"""
_FAILURES_SQL = """
SELECT id, channel, address, last_error, updated_at FROM notify.deliveries
WHERE state = 'failed' ORDER BY updated_at DESC LIMIT %s
"""


def status_report(conn: Connection[Any], queue: DeliveryQueue) -> dict[str, Any]:
    """The report as plain, JSON-ready values."""
    depth = queue.depth()
    channels: dict[str, dict[str, Any]] = {
        channel.value: {
            **dict.fromkeys(_WAITING, 0),
            "due_now": 0,
            "oldest_due_seconds": None,
            "in_queue": depth.get(channel, 0),
            **{f"{outcome}_last_hour": 0 for outcome in _OUTCOMES},
        }
        for channel in Channel
    }
    for channel, queued, retrying, sending, due, oldest in conn.execute(_WAITING_SQL):
        channels[channel].update(
            queued=queued,
            retrying=retrying,
            sending=sending,
            due_now=due,
            oldest_due_seconds=None if oldest is None else float(oldest),
        )
    for channel, outcome, count in conn.execute(_LAST_HOUR_SQL):
        channels[channel][f"{outcome}_last_hour"] = count
    failures = [
        {
            "delivery_id": str(delivery_id),
            "channel": channel,
            "address": mask(address),
            "error": error,
            "failed_at": failed_at.isoformat(timespec="seconds"),
        }
        for delivery_id, channel, address, error, failed_at in conn.execute(
            _FAILURES_SQL, (RECENT_FAILURES,)
        )
    ]
    return {"channels": channels, "recent_failures": failures}


def mask(address: str) -> str:
    """Enough of an address to tell two apart on a screen, not to write to it:
    ``a***@example.com``, ``+44******89``, ``3f2a…`` (a device or user id)."""
    local, at, domain = address.partition("@")
    if at:
        return f"{local[:1]}***@{domain}"
    if address.startswith("+"):
        return address[:3] + "*" * max(len(address) - 5, 0) + address[-2:]
    return address[:4] + "…"


def render(report: dict[str, Any], console: Console) -> None:
    table = Table(
        "channel",
        "queued",
        "retrying",
        "sending",
        "due now",
        "oldest due",
        "in queue",
        "sent 1h",
        "failed 1h",
        "suppressed 1h",
        title="deliveries",
    )
    for name, c in report["channels"].items():
        oldest = c["oldest_due_seconds"]
        table.add_row(
            name,
            *(str(c[key]) for key in ("queued", "retrying", "sending", "due_now")),
            "-" if oldest is None else _age(oldest),
            str(c["in_queue"]),
            *(str(c[f"{outcome}_last_hour"]) for outcome in _OUTCOMES),
        )
    console.print(table)
    if not report["recent_failures"]:
        console.print("[green]no failed deliveries[/green]")
        return
    failures = Table("failed at", "delivery", "channel", "address", "error", title="last failures")
    for f in report["recent_failures"]:
        failures.add_row(
            f["failed_at"], f["delivery_id"], f["channel"], f["address"], f["error"] or ""
        )
    console.print(failures)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

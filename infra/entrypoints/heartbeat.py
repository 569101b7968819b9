"""Liveness of the long-running roles that serve no HTTP (relay, worker): the role's
own event loop touches a file every few seconds, and ``shop serve ROLE --check``
(the container health check) asks whether it did recently. A loop that hangs stops
beating, which a check of the process alone would not see."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

BEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 30.0


def heartbeat_file(data_dir: Path, role: str) -> Path:
    return data_dir / f"{role}.heartbeat"


def beat(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def is_alive(path: Path, now: float | None = None) -> bool:
    """Whether the role beat within ``STALE_AFTER_SECONDS``."""
    try:
        age = (now if now is not None else time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age <= STALE_AFTER_SECONDS


async def beating(path: Path, stopping: asyncio.Event) -> None:
    """Beat until ``stopping`` is set (run beside the role's main coroutine)."""
    while not stopping.is_set():
        beat(path)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), BEAT_SECONDS)

"""``GET /health``: what this process depends on and how it stands, answered within a
bound whatever is down. 200 ``ok`` or ``degraded`` (a background loop failing, dead
letters open: the API still answers), 503 ``down`` when the database does not
answer (every request would fail: a load balancer should send traffic elsewhere).
The background work is read from the process's one list of it
(``streams.supervision.LOOPS``): ``projection_errors`` is what of it fails now,
``loops`` how each loop and projection stands."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import redis.asyncio
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from projections import dead_letters
from streams.supervision import LOOPS, TRANSIENT, Loops, LoopState, failing

if TYPE_CHECKING:
    from infra.wiring.process import Container

CHECK_TIMEOUT = 1.0


class LoopReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    running: bool
    last_error: str | None = Field(description="Why it failed last, while it is failing")
    since: datetime | None = Field(description="When its current failure streak began")


class HealthReport(BaseModel):
    """The body of ``GET /health``, 200 and 503 alike (documentation only: the
    answer is written by ``Health.answer``)."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["ok", "degraded", "down"]
    checks: dict[str, str] = Field(
        description="database (and redis, when configured): ok, or why it is unavailable"
    )
    projection_errors: dict[str, str] = Field(description="Background work failing now, by name")
    dead_letters: dict[str, int] = Field(description="Open dead letters per projection")
    loops: list[LoopReport] = Field(description="Every background loop of this process")


class Health:
    def __init__(self, container: Container, loops: Loops = LOOPS) -> None:
        self._container = container
        self._loops = loops
        url = container.settings.redis_url
        self._redis = (
            redis.asyncio.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT) if url else None
        )

    async def answer(self) -> JSONResponse:
        checks = {"database": await self._database()}
        if self._redis is not None:
            checks["redis"] = await _checked(self._redis.ping())
        letters = await self._dead_letters() if checks["database"] == "ok" else {}
        states = self._loops.states()
        errors = failing(states)
        if checks["database"] != "ok":
            status, code = "down", 503
        elif errors or letters or any(v != "ok" for v in checks.values()):
            status, code = "degraded", 200
        else:
            status, code = "ok", 200
        body = {
            "status": status,
            "checks": checks,
            "projection_errors": errors,
            "dead_letters": letters,
            "loops": [_loop(state) for state in states],
        }
        return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def _database(self) -> str:
        async def select_one() -> None:
            async with self._container.read_pool.connection(CHECK_TIMEOUT) as conn:
                await conn.execute("SELECT 1")

        return await _checked(select_one())

    async def _dead_letters(self) -> dict[str, int]:
        async with self._container.read_pool.connection(CHECK_TIMEOUT) as conn:
            cursor = await conn.execute(dead_letters.OPEN_COUNTS)
            return {str(row[0]): int(row[1]) for row in await cursor.fetchall()}


def _loop(state: LoopState) -> dict[str, Any]:
    since = state.since
    return {
        "name": state.name,
        "running": state.running,
        "last_error": state.last_error,
        "since": None if since is None else datetime.fromtimestamp(since, UTC).isoformat(),
    }


async def _checked(check: Any) -> str:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT)
    except TimeoutError:
        return "unavailable: no answer within a second"
    except TRANSIENT as error:
        return f"unavailable: {type(error).__name__}"
    return "ok"

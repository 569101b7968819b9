"""How a process stands, asked three ways, each answered within about a second
whatever is down (every probe has a timeout, and they run concurrently):

- ``GET /health/live``: the process and its event loop answer; no dependency is
  looked at. The container's health check: failing it gets the process restarted,
  which would not mend a database that is away.
- ``GET /health/ready``: it can serve. Postgres answers; Redis and OpenSearch where
  configured; Kafka in the role that uses it (``shop serve all``, ``Health.require``);
  in a process that runs the projections, none has stood still behind its log for
  longer than ``SHOP_READY_MAX_STALL_SECONDS``. 503 names each failing part and why:
  the load balancer's check, which sends traffic elsewhere meanwhile. Dead letters do
  not fail it: they sit in the database every task shares, so one poison event would
  take every task out of the load balancer (and have ECS replace them all) while
  none of them can mend it; they make ``/health`` degraded and raise an alert
  (``EventshopDeadLetters`` in infra/prometheus/alerts.yml). Nor do the projections
  of other processes: an API task is ready whatever the workers do.
- ``GET /health``: the overview, kept for compatibility: 200 ``ok`` or ``degraded``
  (another part, a background loop failing, dead letters open: the API still
  answers), 503 ``down`` when the database does not answer.

Background work is read from the process's one list of it
(``streams.supervision.LOOPS``): ``projection_errors`` is what of it fails now,
``loops`` how each loop and projection stands. Failure reasons name exception types,
never messages: these answers are public, and messages hold addresses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
import redis.asyncio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from infra.entrypoints.problems import MEDIA_TYPE, problem
from infra.entrypoints.stalls import Stall, StallWatch
from infra.entrypoints.status import every_status
from projections import dead_letters
from projections.positions import ProjectionStatus
from streams.supervision import LOOPS, Loops, LoopState, failing

if TYPE_CHECKING:
    from infra.wiring.process import Container

CHECK_TIMEOUT = 1.0
NO_ANSWER = "unavailable: no answer within a second"
NO_STORE = {"Cache-Control": "no-store"}

Probe = Callable[[], Awaitable[object]]
"""Asks a part whether it answers: returns if it does, raises (or hangs) if not."""


class ClusterRed(Exception):
    """OpenSearch answers, but a primary shard is unassigned: searches fail."""


class LoopReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    running: bool
    last_error: str | None = Field(description="Why it failed last, while it is failing")
    since: datetime | None = Field(description="When its current failure streak began")


class HealthReport(BaseModel):
    """The body of ``GET /health``, 200 and 503 alike (documentation only: the
    answer is written by ``Health.overview``)."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["ok", "degraded", "down"]
    checks: dict[str, str] = Field(
        description="database, and redis, opensearch, kafka where this process uses them: "
        "ok, or why it is unavailable"
    )
    projection_errors: dict[str, str] = Field(description="Background work failing now, by name")
    dead_letters: dict[str, int] = Field(description="Open dead letters per projection")
    loops: list[LoopReport] = Field(description="Every background loop of this process")


class Liveness(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["alive"]


class Readiness(BaseModel):
    """``GET /health/ready`` when it can serve."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["ready"]
    checks: dict[str, str] = Field(
        description="Each part this process depends on (database, projections, and redis, "
        "opensearch, kafka where it uses them): ok"
    )


class NotReady(BaseModel):
    """``GET /health/ready`` when it cannot serve: a problem (RFC 9457) naming the parts."""

    model_config = ConfigDict(extra="forbid")
    type: str
    title: str
    status: Literal[503]
    detail: str
    checks: dict[str, str] = Field(description="Every part: ok, or why not")
    failing: dict[str, str] = Field(description="The parts that are not ok, and why")


class Health:
    def __init__(
        self, container: Container, loops: Loops = LOOPS, runs_projections: bool = True
    ) -> None:
        self._container = container
        self._loops = loops
        self._runs_projections = runs_projections
        settings = container.settings
        self._probes: dict[str, Probe] = {"database": self._database}
        self._redis: redis.asyncio.Redis | None = None
        if settings.redis_url:
            self._redis = redis.asyncio.Redis.from_url(
                settings.redis_url,
                socket_timeout=CHECK_TIMEOUT,
                socket_connect_timeout=CHECK_TIMEOUT,
            )
            self._probes["redis"] = self._redis_ping
        self._opensearch: httpx.AsyncClient | None = None
        if settings.opensearch_url:
            self._opensearch = httpx.AsyncClient(
                base_url=settings.opensearch_url, timeout=CHECK_TIMEOUT
            )
            self._probes["opensearch"] = self._opensearch_health
        self._stalls = StallWatch(settings.ready_max_stall_seconds)
        self._looking: asyncio.Task[list[Stall]] | None = None

    def require(self, name: str, probe: Probe) -> None:
        """One more part readiness depends on: a role's own (Kafka for ``shop serve all``)."""
        self._probes[name] = probe

    async def live(self) -> JSONResponse:
        return JSONResponse({"status": "alive"}, headers=NO_STORE)

    async def ready(self) -> JSONResponse:
        if self._runs_projections:
            checks, projections = await asyncio.gather(self._parts(), self._projections())
            checks["projections"] = projections
        else:
            checks = await self._parts()
        not_ok = {name: why for name, why in checks.items() if why != "ok"}
        if not not_ok:
            return JSONResponse({"status": "ready", "checks": checks}, headers=NO_STORE)
        detail = "not ready: " + ", ".join(not_ok)
        return problem(503, "not-ready", detail, NO_STORE, checks=checks, failing=not_ok)

    async def overview(self) -> JSONResponse:
        checks = await self._parts()
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
        return JSONResponse(body, status_code=code, headers=NO_STORE)

    async def close(self) -> None:
        if self._looking is not None:
            self._looking.cancel()  # not its thread: that ends with its queries
        if self._redis is not None:
            await self._redis.aclose()
        if self._opensearch is not None:
            await self._opensearch.aclose()

    async def _parts(self) -> dict[str, str]:
        names = list(self._probes)
        answers = await asyncio.gather(*(_checked(self._probes[name]) for name in names))
        return dict(zip(names, answers, strict=True))

    async def _database(self) -> None:
        async with self._container.read_pool.connection(CHECK_TIMEOUT) as conn:
            await conn.execute("SELECT 1")

    async def _redis_ping(self) -> None:
        assert self._redis is not None
        await self._redis.ping()

    async def _opensearch_health(self) -> None:
        assert self._opensearch is not None
        response = await self._opensearch.get("/_cluster/health")
        response.raise_for_status()
        if response.json().get("status") == "red":
            raise ClusterRed

    async def _dead_letters(self) -> dict[str, int]:
        async with self._container.read_pool.connection(CHECK_TIMEOUT) as conn:
            cursor = await conn.execute(dead_letters.OPEN_COUNTS)
            return {str(row[0]): int(row[1]) for row in await cursor.fetchall()}

    async def _projections(self) -> str:
        """ok, or which projections stand still."""
        try:
            stalls = await asyncio.wait_for(asyncio.shield(self._look()), CHECK_TIMEOUT)
        except TimeoutError:
            return NO_ANSWER
        except Exception as error:  # noqa: BLE001 - any failure to look is "cannot tell"
            return f"unavailable: {type(error).__name__}"
        return "; ".join(_stood_still(stall) for stall in stalls) or "ok"

    def _look(self) -> asyncio.Task[list[Stall]]:
        """The one look at the positions under way: a look that outlasts its caller's
        timeout is joined by the next caller, not repeated beside it (it holds a
        thread and a connection)."""
        if self._looking is None or self._looking.done():
            self._looking = asyncio.create_task(self._stalled())
            self._looking.add_done_callback(_forget_outcome)
        return self._looking

    async def _stalled(self) -> list[Stall]:
        statuses = await asyncio.to_thread(self._statuses)
        return self._stalls.stalled(statuses, time.monotonic())

    def _statuses(self) -> list[ProjectionStatus]:
        with self._container.pool.connection(CHECK_TIMEOUT) as conn:
            return every_status(conn, self._container)


def _health(request: Request) -> Health:
    health: Health = request.app.state.health
    return health


router = APIRouter(tags=["operations"])


@router.get("/health/live", response_model=Liveness)
async def live(request: Request) -> JSONResponse:
    """The process and its event loop answer (no dependency is looked at)."""
    return await _health(request).live()


@router.get(
    "/health/ready",
    response_model=Readiness,
    responses={
        503: {
            "description": "Not ready: the failing parts, and why",
            "content": {MEDIA_TYPE: {"schema": NotReady.model_json_schema()}},
        }
    },
)
async def ready(request: Request) -> JSONResponse:
    """Whether this process can serve: each part it depends on answers within a
    second, and the projections it runs (if any) do not stand still behind their logs.
    Dead letters do not make it unready (see ``/health``)."""
    return await _health(request).ready()


@router.get(
    "/health",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "down: the database does not answer"}},
)
async def overview(request: Request) -> JSONResponse:
    """The parts (each within a second), background work failing now, open dead
    letters: ``ok``, ``degraded`` or (503) ``down``. Load balancers: ``/health/ready``."""
    return await _health(request).overview()


def _stood_still(stall: Stall) -> str:
    s = stall.status
    return f"{s.name}: stood still for {stall.seconds:.0f}s at {s.log}:{s.position} (head {s.head})"


def _forget_outcome(task: asyncio.Task[Any]) -> None:
    """A look nobody waited for to the end: its failure is the next look's to report."""
    if not task.cancelled():
        task.exception()


def _loop(state: LoopState) -> dict[str, Any]:
    since = state.since
    return {
        "name": state.name,
        "running": state.running,
        "last_error": state.last_error,
        "since": None if since is None else datetime.fromtimestamp(since, UTC).isoformat(),
    }


async def _checked(probe: Probe) -> str:
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT)
    except TimeoutError:
        return NO_ANSWER
    except Exception as error:  # noqa: BLE001 - whatever a probe raises, its part is unavailable
        return f"unavailable: {type(error).__name__}"
    return "ok"

"""The analytics area, built: its views only (sales, the funnel, payment declines,
stock), run beside every other projection by the embedded runner or the stream
workers, and rebuilt by ``shop rebuild`` like them. It has no Application: it
writes no events, it reads the others' logs."""

from __future__ import annotations

from infra.wiring.shared import Pools
from infra.wiring.views import view_specs
from projections.analytics.views import ANALYTICS_VIEWS
from streams.embedded import ProjectionSpec


def specs(pools: Pools) -> list[ProjectionSpec]:
    return view_specs(pools.conninfo, ANALYTICS_VIEWS)

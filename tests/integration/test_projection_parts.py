"""The projections split in two parts for two processes (``shop projections run
--part``): every projection runs in exactly one part, the checkout saga and the
views commands wait for in the foreground, notifications and analytics in the
background; a foreground process starts none of the background's loops."""

from __future__ import annotations

import pytest

from infra.wiring.process import Container
from streams.embedded import ProjectionPart

pytestmark = pytest.mark.integration


def _names(container: Container, part: ProjectionPart) -> set[str]:
    return {spec.name for spec in container.specs if part.runs(spec)}


def test_every_projection_runs_in_exactly_one_part(container: Container) -> None:
    foreground = _names(container, ProjectionPart.FOREGROUND)
    background = _names(container, ProjectionPart.BACKGROUND)
    assert foreground.isdisjoint(background)
    assert foreground | background == _names(container, ProjectionPart.ALL)
    assert {"user_access", "orders"} <= foreground
    assert any(name.startswith("checkout_saga") for name in foreground)
    assert "notifier" in background
    assert any(name.startswith("analytics") for name in background)


def test_the_foreground_starts_no_delivery_or_audit_loop(container: Container) -> None:
    container.start_projections(ProjectionPart.FOREGROUND)
    running = {spec.name for spec in container.runner.specs} if container.runner else set()
    assert running == _names(container, ProjectionPart.FOREGROUND)
    assert container.notifications.loops == []

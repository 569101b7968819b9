"""The audit view, built: the history of any aggregate read from the event stores of
this process's Applications (``infra.postgres.aggregate_history``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventsourcing.application import Application

from infra.postgres.aggregate_history import PostgresAggregateHistory
from read_api.audit import AuditServices


def services(applications: Iterable[Application[Any]]) -> AuditServices:
    """``applications``: every log (``Container.applications()``)."""
    return AuditServices(PostgresAggregateHistory({app.name: app for app in applications}))

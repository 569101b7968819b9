"""How the wiring turns a view class into a running projection: the logs it
declares resolved to the Applications that hold them, and its tables in a
generation schema."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application

from commands.catalog.inventory import InventoryApplication
from commands.catalog.products import CatalogApplication
from commands.catalog.reviews import ReviewsApplication
from commands.ordering.application import OrderingApplication
from commands.ordering.payments import PaymentsApplication
from commands.users.accounts import UsersApplication
from infra.postgres.server import view_datastore
from projections.analytics.views import ANALYTICS_VIEWS
from projections.catalog.views import CATALOG_VIEWS
from projections.engine import (
    LogsUndeclared,
    View,
    ViewProjection,
    followed_logs,
    generation_schema,
)
from projections.ordering.carts import CartsProjection, CartsView
from projections.ordering.orders import ORDERING_VIEWS
from projections.users.views import USER_VIEWS
from streams.embedded import ProjectionSpec

LOGS: dict[str, type[Application[Any]]] = {
    app.name: app
    for app in (
        UsersApplication,
        CatalogApplication,
        InventoryApplication,
        ReviewsApplication,
        OrderingApplication,
        PaymentsApplication,
    )
}
"""Every bounded context's log, by the name views declare in ``follows``."""

VIEWS: list[tuple[type[View], type[ViewProjection[Any]]]] = [
    *USER_VIEWS,
    *CATALOG_VIEWS,
    *ORDERING_VIEWS,
    (CartsView, CartsProjection),
    *ANALYTICS_VIEWS,
]
"""Every rebuildable read model in Postgres with its projection (the areas' wiring
picks theirs; with Redis, the cart view lives there instead)."""


def upstream_of(declaring: type[Any]) -> tuple[type[Application[Any]], ...]:
    """The Applications whose logs a view or a policy class declares it follows."""
    logs = followed_logs(declaring)
    unknown = [log for log in logs if log not in LOGS]
    if unknown:
        raise LogsUndeclared(f"view {declaring.name!r} follows unknown logs {unknown}")
    return tuple(LOGS[log] for log in logs)


def make_view(conninfo: str, view_class: type[View], generation: int) -> View:
    view = view_class(view_datastore(conninfo, generation_schema(view_class.name, generation)))
    view.create_table()
    return view


def own_follower(app_class: type[Application[Any]], suffix: str) -> type[Application[Any]]:
    """The same log (the same name, table and positions) under a class of its own:
    the embedded runner gives each upstream class its own follower thread, so a
    policy on it neither waits for the log's views nor holds them up (a follower
    feeds its members one after another)."""
    return type(f"{app_class.__name__}{suffix}", (app_class,), {"name": app_class.name})


def tracking_only_view(conninfo: str, name: str, generation: int) -> View:
    """A view without tables, for policies and projections into other stores: a
    follower's pull is then one tracking write."""
    view = View(view_datastore(conninfo, generation_schema(name, generation)))
    view.create_table()
    return view


def view_specs(
    conninfo: str, views: list[tuple[type[View], type[ViewProjection[Any]]]]
) -> list[ProjectionSpec]:
    """A rebuildable projection per view, following the logs the view declares."""
    return [
        ProjectionSpec(
            name=view_class.name,
            tables=list(view_class.tables),
            upstream=upstream_of(view_class),
            make_view=lambda g, vc=view_class: make_view(conninfo, vc, g),  # type: ignore[misc]
            make_projection=projection_class,
        )
        for view_class, projection_class in views
    ]

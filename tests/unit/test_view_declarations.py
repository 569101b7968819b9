"""Each view and each policy declares the logs it follows; the wiring resolves them,
and refuses one that declares none or names a log that does not exist."""

from __future__ import annotations

from typing import ClassVar

import pytest

from commands.notifications.policy import Notifier
from commands.ordering.checkout_saga import CheckoutSaga
from infra.wiring.views import LOGS, VIEWS, upstream_of
from projections.engine import LogsUndeclared, View
from projections.ordering.carts import RedisCartsProjection


def test_every_view_follows_logs_that_exist() -> None:
    for view_class, _ in VIEWS:
        upstream = upstream_of(view_class)
        assert upstream, view_class.name
        assert {app.name for app in upstream} <= set(LOGS)


def test_the_policies_declare_the_logs_they_follow() -> None:
    assert [app.name for app in upstream_of(Notifier)] == [
        "users",
        "ordering",
        "inventory",
        "reviews",
    ]
    assert [app.name for app in upstream_of(CheckoutSaga)] == ["ordering", "payments"]
    assert [app.name for app in upstream_of(RedisCartsProjection)] == ["ordering"]


def test_the_users_views_follow_only_the_users_log() -> None:
    users_views = {"user_profiles", "admin_users", "user_access"}
    for view_class, _ in VIEWS:
        if view_class.name in users_views:
            assert [app.name for app in upstream_of(view_class)] == ["users"]


def test_a_view_that_declares_no_logs_is_refused_by_name() -> None:
    class Forgetful(View):
        name = "forgetful"

    with pytest.raises(LogsUndeclared, match=r"Forgetful.*'forgetful'.*follows"):
        upstream_of(Forgetful)


def test_a_view_that_names_an_unknown_log_is_refused() -> None:
    class Misspelt(View):
        name = "misspelt"
        follows: ClassVar[tuple[str, ...]] = ("user",)

    with pytest.raises(LogsUndeclared, match=r"unknown logs \['user'\]"):
        upstream_of(Misspelt)

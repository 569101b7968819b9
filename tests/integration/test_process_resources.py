"""What a process holds: its Applications share one connection pool (Postgres's
connection limit is shared by every process of a deployment), closing one leaves
the others working, and restarting its projections starts no second copy of its
background work (a copy left running outlives the pools it uses)."""

from __future__ import annotations

from uuid import uuid4

import psycopg
import pytest

from commands.users.accounts import UsersApplication
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap
from streams.supervision import LOOPS
from tests.support.polling import eventually
from tests.support.users_client import STRONG_PASSWORD


def sessions_named(conninfo: str, name: str) -> int:
    with psycopg.connect(conninfo, autocommit=True, application_name="probe") as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_process_holds_a_few_connections_whatever_its_number_of_logs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"pool-test-{uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)  # libpq names every session of this test
    container = bootstrap(settings.model_copy(update={"db_pool_size": 3}))
    try:
        container.migrate()
        logs = len(container.applications())
        assert logs >= 7
        user_id = uuid4()
        container.user_commands.register(user_id, "pool@example.com", STRONG_PASSWORD, "Pool")
        # One pool for the event stores, one for everything else, each keeping one
        # connection and a command's worth more: not one (or more) per log.
        assert sessions_named(container.conninfo, name) < logs
    finally:
        container.close()
    # A closed session leaves pg_stat_activity a moment later.
    eventually(lambda: sessions_named(container.conninfo, name) == 0, "every session closed")


def test_closing_one_application_leaves_the_others_their_pool(settings: Settings) -> None:
    container = bootstrap(settings)
    try:
        container.migrate()
        stores = {id(app.factory.datastore) for app in container.applications()}  # type: ignore[attr-defined]
        assert len(stores) == 1
        other = UsersApplication(env=container.pools.app_env)
        assert other.factory.datastore is container.users_app.factory.datastore  # type: ignore[attr-defined]
        other.close()
        other.close()  # twice: counted once
        user_id = uuid4()
        container.user_commands.register(user_id, "left@example.com", STRONG_PASSWORD, "Left")
        assert container.users_app.repository.get(user_id).version >= 1
        follower = UsersApplication(env=container.app_env)
        try:
            assert follower.factory.datastore is not container.users_app.factory.datastore  # type: ignore[attr-defined]
        finally:
            follower.close()
    finally:
        container.close()
    assert container.users_app.factory.datastore.pool.closed  # type: ignore[attr-defined]


def test_projections_restarted_run_one_copy_of_each_background_loop(
    container: Container,
) -> None:
    def names() -> list[str]:
        return sorted(state.name for state in LOOPS.states() if state.name.startswith("notify_"))

    container.start_projections()
    once = names()
    assert once and len(once) == len(set(once))
    assert container.runner is not None
    container.runner.stop()
    container.start_projections()
    assert names() == once
    container.notifications.start_workers()  # restarted on purpose: stopped first
    assert names() == once

"""A poison event in the scaled mode: every projection that fails on it dead-letters
it with the error (in the read models' database, as the embedded mode does) and
moves on (the events after it are applied); ``shop dlq list`` shows the letters,
``shop dlq replay`` fails while the cause is there and applies them (once) after
the fix, closing them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from infra.entrypoints.dlq import open_letters, replay_open
from infra.settings import Settings
from infra.wiring.process import Container
from tests.integration.kafka.conftest import Roles, settings_env
from tests.integration.kafka.read_models import lagging
from tests.integration.kafka.workload import Workload
from tests.support.polling import eventually
from tests.support.server import shop_command

pytestmark = pytest.mark.integration

USERS_PROJECTIONS = {
    "user_profiles",
    "admin_users",
    "user_access",
    "notifier",
    # They follow the users log for erasures (ADR 0024).
    "orders",
    "analytics_sales",
}
LATE_MODULE = '''
from domain.users import User


class Registered(User.Registered):
    """A registration event class the running workers do not have yet."""
'''


def write_poison(container: Container) -> tuple[int, UUID]:
    """A registration stored under an event class no running code has (as written by
    a newer release): no projection can even decode it."""
    app = container.users_app
    registered = next(
        n
        for n in app.recorder.select_notifications(start=1, limit=10_000)
        if n.topic.endswith("User.Registered")
    )
    user_id = uuid4()
    fields = app.mapper.transcoder.decode(registered.state)
    # Its own address and name, in clear as before ADR 0024 (this code seals only
    # the event classes it knows).
    fields.update(email="late@example.com", name="Late Registrant")
    poison = StoredEvent(
        originator_id=user_id,
        originator_version=1,
        topic="late_events:Registered",
        state=app.mapper.transcoder.encode(fields),
    )
    (position,) = app.recorder.insert_events([poison]) or ()
    return position, user_id


def shop(
    settings: Settings, *args: str, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = settings_env(settings)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [*shop_command(), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def profile_exists(container: Container, user_id: UUID) -> bool:
    with container.pool.connection() as conn:
        row = conn.execute("SELECT 1 FROM read.user_profiles WHERE user_id = %s", (user_id,))
        return row.fetchone() is not None


def test_a_poison_event_is_dead_lettered_and_replayed_after_the_fix(
    container: Container,
    settings: Settings,
    roles: Roles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Workload(container).run(5)
    position, user_id = write_poison(container)
    Workload(container, seed=2).run(11)  # two registrations after the poison
    roles.start("relay", db_pool_size=1)
    roles.start("worker", db_pool_size=4)
    eventually(lambda: not lagging(container), "the worker to pass the poison", timeout=120)

    letters = open_letters(container)
    assert {(x.projection, x.log, x.position) for x in letters} == {
        (name, "users", position) for name in USERS_PROJECTIONS
    }
    assert all("late_events" in x.error for x in letters)
    assert not profile_exists(container, user_id)
    with container.pool.connection() as conn:
        later = conn.execute("SELECT count(*) FROM read.user_profiles").fetchone()
    assert later is not None and later[0] == 3  # one before the poison, two after
    listed = shop(settings, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{len(USERS_PROJECTIONS)} open" in listed.stdout and "user_profiles" in listed.stdout

    still = shop(settings, "dlq", "replay")
    assert (
        still.returncode == 1 and f"0 replayed, {len(USERS_PROJECTIONS)} still open" in still.stdout
    )
    assert len(open_letters(container)) == len(USERS_PROJECTIONS)

    fix = tmp_path / "release"
    fix.mkdir()
    (fix / "late_events.py").write_text(LATE_MODULE)
    fixed = shop(settings, "dlq", "replay", pythonpath=fix)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"{len(USERS_PROJECTIONS)} replayed, 0 still open" in fixed.stdout
    assert open_letters(container) == []
    assert profile_exists(container, user_id)

    # Replaying again changes nothing: every letter is closed.
    monkeypatch.syspath_prepend(str(fix))
    assert replay_open(container) == []

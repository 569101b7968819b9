"""The projection engine against a real Postgres: crash and resume, redelivery,
rebuild and swap, no skipped events under concurrent writers, read-your-writes.

The oracle throughout is the write model itself: every read model row is compared
with the aggregates loaded from the users event store.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import PersistenceError, Tracking
from eventsourcing.projection import Projection
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from commands.users.accounts import UsersApplication
from domain.positions import Position
from domain.sessions import Session
from domain.users import Role, User
from infra.entrypoints.rebuild import NotRebuildable, rebuild
from infra.postgres.waiting import PollingWaiter
from infra.wiring.process import Container
from infra.wiring.views import VIEWS, make_view
from projections.engine import TRACKING_TABLE, View, ViewProjection, generation_schema
from projections.positions import tracked_position
from projections.users.views import USER_VIEWS, UserProfilesProjection, UserProfilesView
from streams.embedded import EmbeddedRunner, ProjectionSpec
from streams.replay import catch_up
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

LOG = UsersApplication.name
PASSWORD = "a strong pass phrase 42!"
VIEW_NAMES = [view_class.name for view_class, _ in USER_VIEWS]  # the views of the users log
REBUILDABLE = VIEW_NAMES
TABLES = {view_class.name: list(view_class.tables) for view_class, _ in VIEWS}


# --- the write side: a single-writer workload of real aggregates -------------------


@dataclass
class WriteModel:
    """What was written: the ids to load back from the event store as the oracle."""

    user_ids: list[UUID] = field(default_factory=list)
    sessions: dict[UUID, list[UUID]] = field(default_factory=dict)
    events: int = 0


class Workload:
    """Saves a random but reproducible mix of user and session events straight to
    the UsersApplication (no password hashing, so thousands of events are cheap).
    One writer per workload: its cached aggregates never conflict."""

    def __init__(self, app: UsersApplication, seed: int, model: WriteModel | None = None) -> None:
        self.app = app
        self.rng = random.Random(seed)
        self.model = model or WriteModel()
        self.users: dict[UUID, User] = {}
        self.sessions: list[Session] = []
        self.admin_id = uuid4()

    def save(self, *aggregates: User | Session) -> None:
        recordings = self.app.save(*aggregates)
        self.model.events += len(recordings)

    def new_user(self) -> User:
        user_id = uuid4()
        user = User(
            id=user_id,
            email=f"{user_id.hex[:12]}@example.com",
            password_hash="hash-1",
            name=f"user {user_id.hex[:6]}",
        )
        user.request_email_verification(uuid4(), datetime.now(UTC) + timedelta(hours=1))
        self.save(user)
        self.users[user.id] = user
        self.model.user_ids.append(user.id)
        self.model.sessions[user.id] = []
        return user

    def step(self) -> None:
        """One save of one or two events."""
        active = [u for u in self.users.values() if u.active]
        if len(active) < 3 or self.rng.random() < 0.15:
            self.new_user()
            return
        user = self.rng.choice(active)
        action = self.rng.randrange(9)
        if action in (0, 1):
            user.update_profile({"name": f"name {self.rng.randrange(10**6)}"})
        elif action == 2:
            user.update_profile(
                {
                    "phone": f"+4479{self.rng.randrange(10**8):08d}",
                    "addresses": [{"line1": f"{self.rng.randrange(99)} High St", "city": "Leeds"}],
                    "notification_preferences": {"order_updates_sms": self.rng.random() < 0.5},
                }
            )
        elif action == 3 and not user.email_verified:
            token_id = uuid4()
            user.request_email_verification(token_id, datetime.now(UTC) + timedelta(hours=1))
            user.verify_email(token_id, datetime.now(UTC))
        elif action == 4:
            if user.has_role(Role.SELLER):
                user.revoke_role(Role.SELLER, by=self.admin_id)
            else:
                user.grant_role(Role.SELLER, by=self.admin_id)
        elif action in (5, 6):
            session = Session(
                id=uuid4(),
                user_id=user.id,
                credentials_version=user.credentials_version,
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
            self.sessions.append(session)
            self.model.sessions[user.id].append(session.id)
            self.save(session)
            return
        elif action == 7 and self.sessions:
            session = self.rng.choice(self.sessions)
            session.revoke("signed out")
            self.save(session)
            return
        elif action == 8:
            if self.rng.random() < 0.2:
                user.deactivate("test", by=self.admin_id)
            else:
                user.change_password(f"hash-{self.rng.randrange(10**6)}")
        self.save(user)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()


# --- reading -------------------------------------------------------------------------


def select_all(container: Container, schema: str, table: str) -> list[dict[str, Any]]:
    """Every row, in primary key order (each table's first column)."""
    with container.pool.connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        cursor.execute(SQL("SELECT * FROM {0} ORDER BY 1").format(Identifier(schema, table)))
        return cursor.fetchall()


def read_model(container: Container, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The served contents (``read.<table>``) of the named projections."""
    return {t: select_all(container, "read", t) for name in names for t in TABLES[name]}


def generation_contents(
    container: Container, name: str, generation: int
) -> dict[str, list[dict[str, Any]]]:
    schema = generation_schema(name, generation)
    return {t: select_all(container, schema, t) for t in TABLES[name]}


def tracked(container: Container, name: str) -> int:
    with container.pool.connection() as conn:
        return tracked_position(conn, name, LOG)


def head(container: Container) -> int:
    return container.users_app.recorder.max_notification_id() or 0


def wait_caught_up(container: Container, names: list[str], timeout: float = 20.0) -> None:
    target = head(container)
    eventually(
        lambda: all(tracked(container, n) >= target for n in names),
        f"{names} reach position {target}",
        timeout=timeout,
    )


def served_schema(container: Container, read_view: str) -> str:
    """The generation schema a ``read.`` view selects from."""
    with container.pool.connection() as conn:
        rows = conn.execute(
            "SELECT DISTINCT table_schema FROM information_schema.view_table_usage "
            "WHERE view_schema = 'read' AND view_name = %s",
            (read_view,),
        ).fetchall()
    assert len(rows) == 1, rows
    return str(rows[0][0])


def check_read_model(container: Container, model: WriteModel, names: list[str]) -> None:
    """The served read models equal what the write model says: every user once,
    every field as the aggregate has it, one login counted per session."""
    repository = container.users_app.repository
    users = {uid: cast(User, repository.get(uid)) for uid in model.user_ids}
    session_ids = [s for ids in model.sessions.values() for s in ids]
    sessions = {sid: cast(Session, repository.get(sid)) for sid in session_ids}
    contents = read_model(container, names)
    if "user_profiles" in names:
        rows = {r["user_id"]: r for r in contents["user_profiles"]}
        assert len(contents["user_profiles"]) == len(users)
        assert set(rows) == set(users)
        for uid, user in users.items():
            row = rows[uid]
            expected: dict[str, Any] = {
                "email": user.email,
                "name": user.name,
                "phone": user.phone,
                "addresses": user.addresses,
                "notification_preferences": user.notification_preferences,
                "roles": user.roles,
                "email_verified": user.email_verified,
                "active": user.active,
                "registered_at": user.created_on,
            }
            assert {k: row[k] for k in expected} == expected, uid
    if "admin_users" in names:
        rows = {r["user_id"]: r for r in contents["admin_users"]}
        assert len(contents["admin_users"]) == len(users)
        assert set(rows) == set(users)
        for uid, user in users.items():
            own = [sessions[s] for s in model.sessions[uid]]
            expected = {
                "email": user.email,
                "name": user.name,
                "roles": user.roles,
                "email_verified": user.email_verified,
                "active": user.active,
                "login_count": len(own),
                "last_login_at": max((s.created_on for s in own), default=None),
            }
            assert {k: rows[uid][k] for k in expected} == expected, uid
    if "user_access" in names:
        rows = {r["user_id"]: r for r in contents["access_users"]}
        assert set(rows) == set(users)
        assert len(contents["access_users"]) == len(users)
        for uid, user in users.items():
            assert rows[uid]["roles"] == user.roles
            assert rows[uid]["active"] == user.active
            assert rows[uid]["credentials_version"] == user.credentials_version
        session_rows = {r["session_id"]: r for r in contents["access_sessions"]}
        assert len(contents["access_sessions"]) == len(sessions)
        assert set(session_rows) == set(sessions)
        for sid, session in sessions.items():
            assert session_rows[sid]["user_id"] == session.user_id
            assert session_rows[sid]["revoked"] == session.revoked
            assert session_rows[sid]["credentials_version"] == session.credentials_version
            assert session_rows[sid]["expires_at"] == session.expires_at


def deliveries(container: Container) -> list[tuple[Any, Tracking]]:
    """Every event of the users log with its tracking, as a runner would deliver it."""
    app = container.users_app
    notifications = app.recorder.select_notifications(start=1, limit=100_000)
    return [(app.mapper.to_domain_event(n), Tracking(LOG, n.id)) for n in notifications]


V = TypeVar("V", bound=View)


@contextmanager
def opened_view(container: Container, view_class: type[V], generation: int) -> Iterator[V]:
    view = cast(V, make_view(container.conninfo, view_class, generation))
    try:
        yield view
    finally:
        view.datastore.close()


class Crash(Exception):
    """A projection dying in the middle of its work."""


class CrashingAt(Projection[View]):
    """Wraps a projection; raises when asked to process one given position."""

    def __init__(self, inner: ViewProjection[Any], position: int) -> None:
        super().__init__(inner.view)
        self.inner = inner
        self.position = position

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if tracking.notification_id == self.position:
            raise Crash(f"crashed at {tracking.notification_id}")
        self.inner.process_event(domain_event, tracking)


# --- 1. killed mid-batch, killed mid-stream ------------------------------------------


@pytest.mark.parametrize(("view_class", "projection_class"), USER_VIEWS, ids=VIEW_NAMES)
def test_a_catch_up_killed_mid_batch_leaves_nothing_and_resumes_without_loss(
    container: Container, view_class: type[View], projection_class: type[ViewProjection[Any]]
) -> None:
    app = container.users_app
    workload = Workload(app, seed=1)
    workload.run(80)
    ids = [t.notification_id for _, t in deliveries(container)]
    assert len(ids) == workload.model.events > 40
    first_batch_end, crash_at = ids[9], ids[14]

    with (
        opened_view(container, view_class, 1) as view,
        opened_view(container, view_class, 90) as reference,
    ):
        # The first batch commits whole; the second dies after applying 4 events.
        with pytest.raises(Crash):
            catch_up(app, view, CrashingAt(projection_class(view), crash_at), batch_size=10)
        assert view.max_tracking_id(LOG) == first_batch_end
        reached = catch_up(app, reference, projection_class(reference), until=first_batch_end)
        assert reached == first_batch_end
        assert generation_contents(container, view_class.name, 1) == generation_contents(
            container, view_class.name, 90
        )

        # Crashing again at the same event, from the tracked position: still nothing.
        with pytest.raises(Crash):
            catch_up(app, view, CrashingAt(projection_class(view), crash_at), batch_size=10)
        assert view.max_tracking_id(LOG) == first_batch_end
        assert generation_contents(container, view_class.name, 1) == generation_contents(
            container, view_class.name, 90
        )

        # A working projection resumes from the tracked position to the head.
        assert catch_up(app, view, projection_class(view), batch_size=10) == ids[-1]
        assert view.max_tracking_id(LOG) == ids[-1]
        catch_up(app, reference, projection_class(reference))
        assert generation_contents(container, view_class.name, 1) == generation_contents(
            container, view_class.name, 90
        )
    check_read_model(container, workload.model, [view_class.name])


def test_a_live_runner_stopped_mid_stream_resumes_without_loss_or_duplication(
    container: Container,
) -> None:
    app = container.users_app
    workload = Workload(app, seed=2)
    workload.run(20)
    first_phase_done, restarted = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            workload.run(150)
            first_phase_done.set()
            while not restarted.is_set():  # writes go on while the runner is down
                workload.step()
            workload.run(150)  # and while it catches up and goes live again
        except BaseException as error:
            errors.append(error)
            first_phase_done.set()
            raise

    container.start_projections()
    writer = threading.Thread(target=write, name="writer")
    writer.start()
    try:
        assert first_phase_done.wait(30)
        eventually(lambda: tracked(container, "admin_users") > 0, "the live runner applies events")
        assert container.runner is not None
        container.runner.stop()
        at_stop = {n: tracked(container, n) for n in VIEW_NAMES}
        time.sleep(0.3)
        assert {n: tracked(container, n) for n in VIEW_NAMES} == at_stop, "still running"
        assert all(position < head(container) for position in at_stop.values())
        container.start_projections()
    finally:
        restarted.set()
        writer.join(60)
    assert not errors
    assert container.runner is not None and container.runner.errors() == {}
    wait_caught_up(container, VIEW_NAMES)
    check_read_model(container, workload.model, VIEW_NAMES)


# --- 2. redelivery ---------------------------------------------------------------------


@pytest.mark.parametrize(("view_class", "projection_class"), USER_VIEWS, ids=VIEW_NAMES)
def test_the_same_event_delivered_twice_changes_nothing(
    container: Container, view_class: type[View], projection_class: type[ViewProjection[Any]]
) -> None:
    workload = Workload(container.users_app, seed=3)
    workload.run(60)
    log = deliveries(container)
    name = view_class.name
    assert sum(map(len, workload.model.sessions.values())) > 0

    # Live path: one transaction per event; each event delivered twice in a row.
    with opened_view(container, view_class, 1) as view:
        projection = projection_class(view)
        for event, tracking in log:
            projection.process_event(event, tracking)
            once = (generation_contents(container, name, 1), view.max_tracking_id(LOG))
            projection.process_event(event, tracking)
            assert (generation_contents(container, name, 1), view.max_tracking_id(LOG)) == once
        check_read_model(container, workload.model, [name])  # login_count not doubled
        live = generation_contents(container, name, 1)

        # The whole log again, old events after newer ones: nothing changes.
        for event, tracking in log:
            projection.process_event(event, tracking)
        assert generation_contents(container, name, 1) == live
        assert view.max_tracking_id(LOG) == log[-1][1].notification_id

    # Batch path: duplicates inside one batch, then a batch of nothing but repeats.
    with opened_view(container, view_class, 2) as fresh:
        projection = projection_class(fresh)
        with fresh.batch(LOG):
            for event, tracking in log:
                projection.process_event(event, tracking)
                projection.process_event(event, tracking)
        assert generation_contents(container, name, 2) == live
        assert fresh.max_tracking_id(LOG) == log[-1][1].notification_id
        with fresh.batch(LOG):
            for event, tracking in log:
                projection.process_event(event, tracking)
        assert generation_contents(container, name, 2) == live
        assert fresh.max_tracking_id(LOG) == log[-1][1].notification_id

    # Half live, then a batch over the whole log: the applied half is skipped.
    with opened_view(container, view_class, 3) as mixed:
        projection = projection_class(mixed)
        half = len(log) // 2
        for event, tracking in log[:half]:
            projection.process_event(event, tracking)
        with mixed.batch(LOG):
            for event, tracking in log:
                projection.process_event(event, tracking)
        assert generation_contents(container, name, 3) == live


# --- 3. rebuild --------------------------------------------------------------------------


def link_token(container: Container, email: str) -> str:
    """The verification token from the mail the notifier sent."""
    found: list[str] = []

    def mailed() -> bool:
        for message in container.mailbox.messages(email):
            match = re.search(r"send this token to the API: (\S+)", message["body"])
            if match and message["subject"] == "Verify your email address":
                found.append(match[1])
                return True
        return False

    eventually(mailed, f"a verification mail reaches {email}")
    return found[0]


def test_a_rebuild_yields_the_live_read_model_and_the_runner_follows_the_swap(
    container: Container,
) -> None:
    commands = container.user_commands
    model = WriteModel()
    container.start_projections()

    # Real commands: register, verify through the mailed link, log in, edit, roles.
    emails = [f"shopper{i}@example.com" for i in range(5)]
    user_ids = []
    for i, email in enumerate(emails):
        written = commands.register(uuid4(), email, PASSWORD, f"Shopper {i}")
        user_ids.append(written.id)
        model.user_ids.append(written.id)
        model.sessions[written.id] = []
    admin = user_ids[0]
    for email in emails[:4]:
        commands.verify_email(link_token(container, email))
    for email, uid in zip(emails[:3] * 2, user_ids[:3] * 2, strict=True):
        model.sessions[uid].append(commands.login(email, PASSWORD).session_id)
    commands.update_profile(user_ids[1], {"name": "Renamed One", "phone": "+447900900900"})
    commands.update_profile(
        user_ids[2],
        {
            "addresses": [{"line1": "1 Main St", "city": "York"}],
            "notification_preferences": {"marketing_email": True},
        },
    )
    commands.grant_role(admin, Role.ADMIN, by=admin)
    commands.grant_role(user_ids[1], Role.SELLER, by=admin)
    commands.grant_role(user_ids[2], Role.SELLER, by=admin)
    commands.revoke_role(user_ids[2], Role.SELLER, by=admin)
    commands.logout(model.sessions[user_ids[1]][0])
    commands.change_password(user_ids[2], PASSWORD, "another strong pass phrase 77?")
    commands.deactivate(user_ids[4], "spam", by=admin)
    # And volume: a few hundred events straight to the store.
    Workload(container.users_app, seed=4, model=model).run(300)

    wait_caught_up(container, [*VIEW_NAMES, "notifier"])
    check_read_model(container, model, VIEW_NAMES)
    live = read_model(container, VIEW_NAMES)

    for name in REBUILDABLE:
        assert rebuild(container, name) == 2
    served = container.active_generations()
    assert {n: served[n] for n in [*REBUILDABLE, "notifier"]} == {
        **dict.fromkeys(REBUILDABLE, 2),
        "notifier": 1,
    }
    for name in REBUILDABLE:
        for read_view in [*TABLES[name], f"{name}__tracking"]:
            assert served_schema(container, read_view) == generation_schema(name, 2)
    assert read_model(container, VIEW_NAMES) == live
    with pytest.raises(NotRebuildable):
        rebuild(container, "notifier")

    # The live runner moves onto generation 2: later writes show up in read.*.
    commands.update_profile(user_ids[3], {"name": "After The Swap"})
    model.sessions[user_ids[3]].append(commands.login(emails[3], PASSWORD).session_id)
    wait_caught_up(container, VIEW_NAMES)
    check_read_model(container, model, VIEW_NAMES)
    profiles = {r["user_id"]: r for r in read_model(container, ["user_profiles"])["user_profiles"]}
    assert profiles[user_ids[3]]["name"] == "After The Swap"

    # A second rebuild while writes go on: generation 3 served, 1 dropped, 2 kept.
    # The three rebuilds run side by side, as separate `shop rebuild` runs may.
    concurrent_writes = Workload(container.users_app, seed=5, model=model)
    writer = threading.Thread(target=concurrent_writes.run, args=(300,))
    generations: dict[str, int | BaseException] = {}

    def rebuild_one(name: str) -> None:
        try:
            generations[name] = rebuild(container, name)
        except BaseException as error:
            generations[name] = error
            raise

    rebuilders = [threading.Thread(target=rebuild_one, args=(n,)) for n in REBUILDABLE]
    writer.start()
    for thread in rebuilders:
        thread.start()
    for thread in [writer, *rebuilders]:
        thread.join(60)
    assert generations == dict.fromkeys(REBUILDABLE, 3)
    with container.pool.connection() as conn:
        schemas = {
            str(row[0])
            for row in conn.execute("SELECT schema_name FROM information_schema.schemata")
        }
    for name in REBUILDABLE:
        assert generation_schema(name, 1) not in schemas
        assert generation_schema(name, 2) in schemas
        assert served_schema(container, TABLES[name][0]) == generation_schema(name, 3)
    wait_caught_up(container, VIEW_NAMES)
    check_read_model(container, model, VIEW_NAMES)
    assert container.runner is not None and container.runner.errors() == {}


def test_followers_open_the_event_store_concurrently_without_ddl_races(
    container: Container,
) -> None:
    """Runners and rebuilds each open their own Application on the store, often at
    the same moment (a rebuild while the watchdog restarts a runner). Doing DDL on
    open (CREATE OR REPLACE FUNCTION) then fails with "tuple concurrently updated"."""
    errors: list[str] = []
    start = threading.Barrier(4)

    def open_and_close() -> None:
        start.wait()
        for _ in range(15):
            try:
                UsersApplication(env=container.app_env).close()
            except PersistenceError as error:
                errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


# --- 4. no gaps under concurrent writers -------------------------------------------------


class AppliedView(View):
    name = "applied"
    tables = {"applied": "notification_id bigint PRIMARY KEY"}


class AppliedProjection(ViewProjection[AppliedView]):
    """Records each position it applies; a second application of one would fail
    on the primary key."""

    name = "applied"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        with self.view.changes(tracking) as cursor:
            if cursor is not None:
                cursor.execute("INSERT INTO applied VALUES (%s)", (tracking.notification_id,))


def live_tracking(container: Container, name: str = "applied") -> int:
    with container.pool.connection() as conn:
        row = conn.execute(
            SQL("SELECT max(notification_id) FROM {0}.{1} WHERE application_name = %s").format(
                Identifier(generation_schema(name, 1)), Identifier(TRACKING_TABLE)
            ),
            (LOG,),
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def test_followers_apply_every_committed_event_under_concurrent_writers(
    container: Container,
) -> None:
    app = container.users_app
    writers, saves_per_writer = 12, 150
    written = [0] * writers
    started = threading.Barrier(writers + 1)
    done = threading.Event()
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            rng = random.Random(index)
            mine: list[User] = []
            started.wait()
            for _ in range(saves_per_writer):
                if mine and rng.random() < 0.3:
                    user = rng.choice(mine)
                    user.update_profile({"name": f"n{rng.randrange(10**9)}"})
                    aggregates: list[User | Session] = [user]
                else:
                    user_id = uuid4()
                    user = User(id=user_id, email=f"{user_id}@x.test", password_hash="h", name="x")
                    mine.append(user)
                    aggregates = [user]
                    if rng.random() < 0.5:
                        aggregates.append(
                            Session(
                                id=uuid4(),
                                user_id=user_id,
                                credentials_version=1,
                                expires_at=datetime.now(UTC) + timedelta(days=1),
                            )
                        )
                written[index] += len(app.save(*aggregates))
        except BaseException as error:
            errors.append(error)
            raise

    spec = ProjectionSpec(
        name="applied",
        tables=["applied"],
        upstream=(UsersApplication,),
        make_view=lambda generation: make_view(container.conninfo, AppliedView, generation),
        make_projection=lambda view: AppliedProjection(cast(AppliedView, view)),
    )
    runner = EmbeddedRunner(
        specs=[spec],
        app_env=container.app_env,
        active_generations=dict,
        ensure_generation=lambda spec: 1,
        conninfo=container.conninfo,
    )
    polled = make_view(container.conninfo, AppliedView, 2)
    polled_projection = AppliedProjection(cast(AppliedView, polled))

    def poll() -> None:  # a second follower: catch-up passes in a loop
        try:
            while not done.is_set():
                catch_up(app, polled, polled_projection, batch_size=100)
                time.sleep(0.01)
        except BaseException as error:
            errors.append(error)
            raise

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    poller = threading.Thread(target=poll)
    poller.start()
    try:
        started.wait()
        eventually(lambda: head(container) > 300, "the writers get going")
        runner.start()  # catch-up, then live, while the writers write
        for thread in threads:
            thread.join(60)
        final = head(container)
        eventually(
            lambda: (polled.max_tracking_id(LOG) or 0) >= final,
            "the polling follower reaches the head",
        )
        eventually(lambda: live_tracking(container) >= final, "the live follower reaches the head")
    finally:
        done.set()
        poller.join(30)
        runner.stop()
        polled.datastore.close()
    assert not errors
    assert runner.errors() == {}

    with container.pool.connection() as conn:
        committed = {r[0] for r in conn.execute("SELECT notification_id FROM users_events")}
        live = {
            r[0]
            for r in conn.execute(
                SQL("SELECT notification_id FROM {0}.applied").format(
                    Identifier(generation_schema("applied", 1))
                )
            )
        }
        polling = {
            r[0]
            for r in conn.execute(
                SQL("SELECT notification_id FROM {0}.applied").format(
                    Identifier(generation_schema("applied", 2))
                )
            )
        }
    assert len(committed) == sum(written) > 2000
    assert live == committed, f"live follower: missing {sorted(committed - live)[:20]}"
    assert polling == committed, f"catch-up loop: missing {sorted(committed - polling)[:20]}"


class OtherAppliedView(AppliedView):
    name = "applied_other"


def applied_positions(container: Container, name: str) -> set[int]:
    with container.pool.connection() as conn:
        rows = conn.execute(
            SQL("SELECT notification_id FROM {0}").format(
                Identifier(generation_schema(name, 1), "applied")
            )
        ).fetchall()
    return {int(r[0]) for r in rows}


def test_a_view_that_fails_live_is_restarted_alone_and_loses_nothing(
    container: Container,
) -> None:
    """Views share one follower per log, which applies each pull as a batch: a view
    failing mid-batch rolls the batch back and tries its events one by one; failing
    again there, it leaves the follower and is restarted by the watchdog, while the
    other view sharing the follower keeps up. Its third attempt passes: nothing is
    dead-lettered."""
    workload = Workload(container.users_app, seed=7)
    workload.run(30)
    crash_at = head(container) + 20
    crashes: list[int] = []
    crashed = threading.Event()

    class CrashingTwice(AppliedProjection):
        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            if tracking.notification_id == crash_at and len(crashes) < 2:
                crashes.append(crash_at)
                crashed.set()
                raise Crash(f"crashed at {crash_at}")
            super().process_event(domain_event, tracking)

    def spec(view_class: type[AppliedView], projection: type[AppliedProjection]) -> ProjectionSpec:
        return ProjectionSpec(
            name=view_class.name,
            tables=["applied"],
            upstream=(UsersApplication,),
            make_view=lambda generation: make_view(container.conninfo, view_class, generation),
            make_projection=lambda view: projection(cast(AppliedView, view)),
        )

    runner = EmbeddedRunner(
        specs=[spec(AppliedView, CrashingTwice), spec(OtherAppliedView, AppliedProjection)],
        app_env=container.app_env,
        active_generations=dict,
        ensure_generation=lambda spec: 1,
        conninfo=container.conninfo,
    )
    runner.start()
    try:
        for _ in range(60):  # live writes, a few at a time, past the crash
            workload.run(2)
            time.sleep(0.01)
        final = head(container)
        eventually(lambda: live_tracking(container, "applied_other") >= final, "the other view")
        eventually(lambda: crashed.is_set() and "applied" in runner.errors(), "the failure")
        errors = runner.errors()
        eventually(lambda: live_tracking(container) >= final, "the restarted view", timeout=30)
        eventually(lambda: not runner.errors(), "the failure to be forgotten once recovered")
    finally:
        runner.stop()
    assert list(errors) == ["applied"]
    assert "crashed at" in errors["applied"]
    with container.pool.connection() as conn:
        committed = {r[0] for r in conn.execute("SELECT notification_id FROM users_events")}
    assert applied_positions(container, "applied") == committed
    assert applied_positions(container, "applied_other") == committed


# --- 5. read-your-writes waiting -----------------------------------------------------------


def test_the_waiter_answers_true_once_the_projection_reaches_a_position(
    container: Container,
) -> None:
    workload = Workload(container.users_app, seed=6)
    workload.run(10)
    position = Position(LOG, head(container))
    waiter = PollingWaiter(container.pool)
    assert tracked(container, "user_profiles") < position.id

    # Nobody is projecting: a bounded wait, then False.
    started = time.monotonic()
    assert waiter.wait("user_profiles", [position], timeout=0.3) is False
    assert time.monotonic() - started >= 0.25

    # The projection gets there while the waiter waits.
    def project_later() -> None:
        time.sleep(0.3)
        with opened_view(container, UserProfilesView, 1) as view:
            catch_up(container.users_app, view, UserProfilesProjection(view))

    projector = threading.Thread(target=project_later)
    projector.start()
    try:
        assert waiter.wait("user_profiles", [position], timeout=10) is True
    finally:
        projector.join(10)
    assert tracked(container, "user_profiles") >= position.id

    # Reached positions answer at once; one never reached times out.
    assert waiter.wait("user_profiles", [Position(LOG, 1), position], timeout=0) is True
    never = Position(LOG, position.id + 1000)
    assert waiter.wait("user_profiles", [position, never], timeout=0.2) is False
    assert waiter.wait("user_profiles", [Position("orders", 1)], timeout=0.1) is False
    # A projection that does not exist (no read.<name>__tracking): an error, not True.
    with pytest.raises(Exception, match="does not exist"):
        waiter.wait("no_such_projection", [position], timeout=0.1)

"""The audit view's history and past states, read from the real event store (here
encrypted at rest, as production runs): each event with its actor and time, keyset
pages that add up to the whole history whatever their size, the aggregate as it was
at each version and at each event's time, secrets never shown, and the refusals
(an id of another kind, a version never reached, a time before it existed)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from pydantic import SecretStr

from commands.actors import acting_as
from domain.actors import Actor, ActorKind
from infra.postgres.aggregate_history import PostgresAggregateHistory
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap
from projections.audit.history import AuditedKind, HistoryEntry, NoSuchAggregate
from projections.audit.plain import REDACTED
from tests.conftest import TEST_SECRET
from tests.support.production import ENCRYPTION_KEY
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.integration

SHOPPER = Actor(ActorKind.USER, None, "req-register", "192.0.2.10")
ADMIN = Actor(ActorKind.USER, str(uuid4()), "req-admin", "192.0.2.11")
NAMES = ["Ada Lovelace", "Ada King", "Augusta Ada King"]


@pytest.fixture
def container(database_url: str, tmp_path: Path) -> Iterator[Container]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key=SecretStr(TEST_SECRET),
        encryption_key=SecretStr(ENCRYPTION_KEY),
    )
    c = bootstrap(settings)
    c.migrate()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def history(container: Container) -> PostgresAggregateHistory:
    return PostgresAggregateHistory({app.name: app for app in container.applications()})


def write_account(container: Container) -> UUID:
    """An account registered by its owner, renamed twice by an admin, then its
    password changed by the owner (signed in now)."""
    users = container.user_commands
    user_id = uuid4()
    with acting_as(SHOPPER):
        users.register(user_id, f"ada-{user_id.hex[:8]}@example.com", STRONG_PASSWORD, NAMES[0])
    with acting_as(ADMIN):
        for name in NAMES[1:]:
            users.update_profile(user_id, {"name": name})
    with acting_as(Actor(ActorKind.USER, str(user_id), "req-password", "192.0.2.10")):
        users.change_password(user_id, STRONG_PASSWORD, STRONG_PASSWORD + "-new")
    return user_id


def whole_history(
    history: PostgresAggregateHistory, user_id: UUID, limit: int
) -> list[HistoryEntry]:
    entries: list[HistoryEntry] = []
    after = 0
    while True:
        page = history.history(AuditedKind.USER, user_id, after=after, limit=limit)
        assert page.log == "users"
        assert len(page.entries) <= limit
        entries += page.entries
        if page.next_after is None:
            return entries
        after = page.next_after


def test_the_history_names_each_actor_in_order(
    container: Container, history: PostgresAggregateHistory
) -> None:
    user_id = write_account(container)
    entries = whole_history(history, user_id, limit=100)
    assert [e.version for e in entries] == list(range(1, len(entries) + 1))
    assert [e.type for e in entries] == [
        "User.Registered",
        "User.TokenIssued",
        "User.ProfileUpdated",
        "User.ProfileUpdated",
        "User.PasswordChanged",
    ]
    assert [e.actor for e in entries] == [
        SHOPPER,
        SHOPPER,
        ADMIN,
        ADMIN,
        Actor(ActorKind.USER, str(user_id), "req-password", "192.0.2.10"),
    ]
    assert entries[2].data == {"changes": {"name": NAMES[1]}}
    assert entries[0].data["password_hash"] == REDACTED
    assert entries[-1].data == {"password_hash": REDACTED}
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    positions = [e.position for e in entries]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


@pytest.mark.parametrize("limit", [1, 2, 3, 4])
def test_pages_of_any_size_add_up_to_the_whole_history(
    container: Container, history: PostgresAggregateHistory, limit: int
) -> None:
    user_id = write_account(container)
    assert whole_history(history, user_id, limit) == whole_history(history, user_id, 100)


def test_the_aggregate_as_it_was_at_each_version_and_each_time(
    container: Container, history: PostgresAggregateHistory
) -> None:
    user_id = write_account(container)
    entries = whole_history(history, user_id, limit=100)
    replayed = container.users_app.repository
    for entry in entries:
        at_version = history.state_at(AuditedKind.USER, user_id, version=entry.version)
        assert (at_version.version, at_version.at, at_version.last_version) == (
            entry.version,
            entry.at,
            len(entries),
        )
        assert at_version.state["name"] == replayed.get(user_id, version=entry.version).name
        assert at_version.state["password_hash"] == REDACTED
        # As it stood at the event's time and a moment later: its last event by then
        # (one save's events may share a time).
        for moment in (entry.at, entry.at + timedelta(microseconds=1)):
            by_then = max(e.version for e in entries if e.at <= moment)
            at_time = history.state_at(AuditedKind.USER, user_id, as_of=moment)
            assert at_time == history.state_at(AuditedKind.USER, user_id, version=by_then)
    assert [
        history.state_at(AuditedKind.USER, user_id, version=v).state["name"] for v in (1, 3, 4)
    ] == NAMES
    now = history.state_at(AuditedKind.USER, user_id)
    assert now.version == len(entries)
    later = history.state_at(AuditedKind.USER, user_id, as_of=entries[-1].at + timedelta(days=1))
    assert later == now


def test_refusals(container: Container, history: PostgresAggregateHistory) -> None:
    user_id = write_account(container)
    first = history.history(AuditedKind.USER, user_id, after=0, limit=1).entries[0]
    with pytest.raises(NoSuchAggregate, match="no version 9"):
        history.state_at(AuditedKind.USER, user_id, version=9)
    with pytest.raises(NoSuchAggregate, match="did not exist"):
        history.state_at(AuditedKind.USER, user_id, as_of=first.at - timedelta(microseconds=1))
    for kind in (AuditedKind.ORDER, AuditedKind.PRODUCT):  # a user's id named as another kind
        with pytest.raises(NoSuchAggregate):
            history.history(kind, user_id, after=0, limit=10)
    with pytest.raises(NoSuchAggregate):
        history.history(AuditedKind.USER, uuid4(), after=0, limit=10)
    with pytest.raises(NoSuchAggregate):
        history.state_at(AuditedKind.USER, uuid4())
    # Past the last version: an empty last page, not a refusal.
    page = history.history(AuditedKind.USER, user_id, after=99, limit=10)
    assert (page.entries, page.next_after) == ([], None)

"""Session: refresh-token rotation with reuse detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from commands.users.accounts import UsersApplication
from domain.errors import SessionEnded
from domain.sessions import Rotation, Session

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(days=30)


def new_session(credentials_version: int = 1) -> Session:
    return Session(
        id=uuid4(), user_id=uuid4(), credentials_version=credentials_version, expires_at=T0 + TTL
    )


def replay(events: list[Any]) -> Any:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


def test_a_new_session_is_at_generation_one() -> None:
    session = new_session()
    assert session.generation == 1
    assert not session.revoked
    assert session.revoked_reason is None


def test_the_current_generation_rotates() -> None:
    session = new_session()
    assert session.rotate(1, 1, T0) is Rotation.ROTATED
    assert session.generation == 2
    assert session.rotate(2, 1, T0 + timedelta(days=1)) is Rotation.ROTATED
    assert session.generation == 3
    assert not session.revoked


@pytest.mark.parametrize("presented", [0, 1, 3, 99, -1])
def test_any_other_generation_revokes_the_family(presented: int) -> None:
    session = new_session()
    session.rotate(1, 1, T0)  # now at generation 2
    assert session.rotate(presented, 1, T0) is Rotation.REUSE_DETECTED
    assert session.revoked
    assert session.revoked_reason == Rotation.REUSE_DETECTED.value
    assert session.generation == 2
    for generation in (1, 2, 3):
        with pytest.raises(SessionEnded):
            session.rotate(generation, 1, T0)


def test_changed_credentials_revoke_the_family() -> None:
    session = new_session(credentials_version=1)
    assert session.rotate(1, 2, T0) is Rotation.CREDENTIALS_CHANGED
    assert session.revoked
    assert session.revoked_reason == Rotation.CREDENTIALS_CHANGED.value
    with pytest.raises(SessionEnded):
        session.rotate(1, 1, T0)


def test_changed_credentials_win_over_a_stale_generation() -> None:
    session = new_session(credentials_version=1)
    assert session.rotate(7, 2, T0) is Rotation.CREDENTIALS_CHANGED


def test_an_expired_session_cannot_refresh() -> None:
    session = new_session()
    with pytest.raises(SessionEnded):
        session.rotate(1, 1, T0 + TTL)  # expiry is exclusive
    with pytest.raises(SessionEnded):
        session.rotate(1, 1, T0 + TTL + timedelta(seconds=1))
    assert session.generation == 1
    assert session.version == 1  # nothing recorded


def test_a_signed_out_session_cannot_refresh_and_signing_out_twice_records_once() -> None:
    session = new_session()
    session.revoke("signed out")
    version = session.version
    session.revoke("signed out again")
    assert session.version == version
    assert session.revoked_reason == "signed out"
    with pytest.raises(SessionEnded):
        session.rotate(1, 1, T0)


current = st.tuples(st.just("current"), st.just(0))
presentations = st.lists(
    st.one_of(
        current,  # listed thrice: most presentations are honest
        current,
        current,
        st.tuples(st.just("stale"), st.sampled_from([-3, -2, -1, 1, 2, 3])),
        st.tuples(st.just("credentials"), st.integers(1, 3)),
        st.tuples(st.just("wait"), st.integers(1, 240)),  # hours
        st.tuples(st.just("sign out"), st.just(0)),
    ),
    max_size=30,
)


@given(steps=presentations)
@settings(max_examples=150, deadline=None)
def test_rotation_moves_one_generation_at_a_time_and_nothing_rotates_after_revocation(
    steps: list[tuple[str, int]],
) -> None:
    session = new_session(credentials_version=1)
    app = UsersApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    now = T0
    events: list[Any] = []
    for kind, n in steps:
        if kind == "wait":
            now += timedelta(hours=n)
            continue
        if kind == "sign out":
            session.revoke("signed out")
            continue
        presented = session.generation + (n if kind == "stale" else 0)
        credentials_version = 1 + (n if kind == "credentials" else 0)
        before, was_revoked = session.generation, session.revoked
        try:
            outcome = session.rotate(presented, credentials_version, now)
        except SessionEnded:
            event("SessionEnded")
            assert was_revoked or now >= session.expires_at
            assert session.generation == before
            assert session.revoked == was_revoked
            continue
        event(outcome.value)
        assert not was_revoked, "a revoked session answered a rotation"
        if outcome is Rotation.ROTATED:
            assert (kind, credentials_version) == ("current", 1)
            assert session.generation == before + 1
            assert not session.revoked
        else:
            assert outcome is (
                Rotation.CREDENTIALS_CHANGED if kind == "credentials" else Rotation.REUSE_DETECTED
            )
            assert session.generation == before
            assert session.revoked
            assert session.revoked_reason == outcome.value
    events.extend(session.collect_events())
    rotations = sum(isinstance(e, Session.Rotated) for e in events)
    assert session.generation == 1 + rotations
    assert sum(isinstance(e, Session.Revoked) for e in events) == int(session.revoked)
    # Replaying the events, in memory and through the store, rebuilds the session.
    assert replay(events) == session
    app.save(*events)
    assert app.repository.get(session.id) == session


def test_a_session_survives_its_snapshot() -> None:
    app = UsersApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    session = new_session()
    for _ in range(60):
        session.rotate(session.generation, 1, T0)
        app.save(session)
    assert app.snapshots is not None
    assert list(app.snapshots.get(session.id))  # a snapshot was taken
    assert app.repository.get(session.id) == session
    assert app.repository.get(session.id, version=25).generation == 25


@given(rotations=st.integers(1, 40), data=st.data())
@settings(max_examples=40, deadline=None)
def test_after_n_rotations_any_earlier_generation_is_a_reuse(
    rotations: int, data: st.DataObject
) -> None:
    session = new_session()
    for n in range(rotations):
        assert session.rotate(1 + n, 1, T0) is Rotation.ROTATED
    assert session.generation == 1 + rotations
    replayed = data.draw(st.integers(1, rotations))  # every retired generation
    assert session.rotate(replayed, 1, T0) is Rotation.REUSE_DETECTED
    with pytest.raises(SessionEnded):
        session.rotate(session.generation, 1, T0)

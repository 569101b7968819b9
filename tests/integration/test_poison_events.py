"""A poison event never stops the world, in the embedded runner: the projection that
fails on it dead-letters it (after its attempts) and goes on with every other
aggregate; the aggregate's later events wait behind the letter; a restart starts;
``shop dlq replay``'s core applies the letters, in order, once the cause is fixed."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from infra.entrypoints.dlq import open_letters, replay_open
from infra.wiring.process import Container
from tests.support.polling import eventually
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.integration

CONSTRAINT = "no_poison_in_tests"


@pytest.fixture
def running(container: Container) -> Iterator[Container]:
    container.start_projections()
    yield container


def register(container: Container, name: str) -> UUID:
    user_id = uuid4()
    email = f"{name.lower().replace(' ', '-')}-{user_id.hex[:6]}@example.com"
    container.user_commands.register(user_id, email, STRONG_PASSWORD, name)
    return user_id


def profile_name(container: Container, user_id: UUID) -> str | None:
    with container.pool.connection() as conn:
        row = conn.execute(
            "SELECT name FROM read.user_profiles WHERE user_id = %s", (user_id,)
        ).fetchone()
    return None if row is None else str(row[0])


def mails_to(container: Container, user_id: UUID) -> int:
    with container.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM public.mailbox m JOIN read.user_profiles p "
            "ON p.email = m.recipient WHERE p.user_id = %s",
            (user_id,),
        ).fetchone()
    return int(row[0]) if row else 0


def poison_the_profiles_view(container: Container) -> None:
    """A view whose SQL fails on some events: a CHECK the rows of a name break."""
    with container.pool.connection() as conn:
        conn.execute(
            f"ALTER TABLE rm_user_profiles_g1.user_profiles ADD CONSTRAINT {CONSTRAINT} "
            "CHECK (name NOT LIKE '%%Poison%%') NOT VALID"
        )


def fix_the_profiles_view(container: Container) -> None:
    with container.pool.connection() as conn:
        conn.execute(f"ALTER TABLE rm_user_profiles_g1.user_profiles DROP CONSTRAINT {CONSTRAINT}")


def test_a_poison_event_is_dead_lettered_the_rest_flows_and_it_is_replayed_after_the_fix(
    running: Container,
) -> None:
    container = running
    poison_the_profiles_view(container)
    poisoned = register(container, "Poison Pill")
    container.user_commands.update_profile(poisoned, {"name": "Poison Renamed"})
    later = [register(container, f"Later {n}") for n in range(3)]

    # Every other sign-up is projected and mailed; the poisoned one is mailed too
    # (the mail policy is another projection, untouched by the view's failure).
    for user_id in later:
        eventually(partial(profile_name, container, user_id), f"the profile of {user_id}")
    letters = eventually(lambda: open_letters(container, "user_profiles"), "the dead letter")
    assert profile_name(container, poisoned) is None
    failed, *parked = letters
    assert failed.originator_id == poisoned and failed.behind is None
    assert CONSTRAINT in failed.error
    # Its aggregate's later events wait behind it, in order (the token for the mail,
    # the rename).
    assert parked and all(p.originator_id == poisoned for p in parked)
    assert all(p.behind == failed.position for p in parked)
    assert [p.position for p in parked] == sorted(p.position for p in parked)
    assert not open_letters(container, "notifier")
    # Dead-lettered: nothing is failing now.
    eventually(lambda: "user_profiles" not in container.background_errors(), "the recovery")

    # A restart starts (the poison is not retried at start: it is dead-lettered).
    container.runner.stop()  # type: ignore[union-attr]
    container.start_projections()
    fresh = register(container, "After Restart")
    eventually(lambda: profile_name(container, fresh), "a profile after the restart")

    # Replaying before the fix fails and keeps every letter open.
    still = replay_open(container, "user_profiles")
    assert [o.failure is not None for o in still] == [True] * len(letters)
    assert len(open_letters(container, "user_profiles")) == len(letters)

    fix_the_profiles_view(container)
    replayed = replay_open(container, "user_profiles")
    assert [o.failure for o in replayed] == [None] * len(letters)
    assert profile_name(container, poisoned) == "Poison Renamed"  # in order
    assert open_letters(container) == []
    assert replay_open(container) == []

    # The aggregate flows live again: its next event is applied, not parked.
    container.user_commands.update_profile(poisoned, {"name": "Cured"})
    eventually(lambda: profile_name(container, poisoned) == "Cured", "the live rename")
    assert open_letters(container) == []


def test_an_undecodable_event_is_dead_lettered_by_every_view_of_its_log(
    running: Container,
) -> None:
    container = running
    app = container.users_app
    first = register(container, "Before")
    eventually(lambda: profile_name(container, first), "the first profile")
    stored = app.recorder.select_notifications(start=1, limit=1)[0]
    unknown = StoredEvent(
        originator_id=uuid4(), originator_version=1, topic="gone_module:Gone", state=stored.state
    )
    (position,) = app.recorder.insert_events([unknown]) or ()
    after = register(container, "After")
    eventually(lambda: profile_name(container, after), "a profile after the undecodable event")
    letters = eventually(
        lambda: (
            [x for x in open_letters(container) if x.position == position]
            if len([x for x in open_letters(container) if x.position == position]) >= 4
            else None
        ),
        "the letters of every users projection",
    )
    assert {x.projection for x in letters} >= {
        "user_profiles",
        "admin_users",
        "user_access",
        "notifier",
    }
    assert all("gone_module" in x.error for x in letters)


def test_text_postgres_cannot_store_is_projected_with_a_replacement_character(
    running: Container,
) -> None:
    """Events written before the edge refused NUL still project: the view shows
    U+FFFD where the event holds U+0000."""
    container = running
    app = container.users_app
    template = register(container, "Template")
    eventually(lambda: profile_name(container, template), "the template's profile")
    registered = next(
        n
        for n in app.recorder.select_notifications(start=1, limit=1000)
        if n.originator_id == template and n.topic.endswith("User.Registered")
    )
    user_id = uuid4()
    # As stored before the sealing of personal fields (ADR 0024): in clear.
    fields = app.mapper.transcoder.decode(registered.state)
    fields.update(name="Ev\u0000e", email=f"nul-{user_id.hex}@example.com")
    state = app.mapper.transcoder.encode(fields)
    app.recorder.insert_events([StoredEvent(user_id, 1, registered.topic, state)])
    assert eventually(lambda: profile_name(container, user_id), "the NUL profile") == "Ev\ufffde"
    assert open_letters(container) == []

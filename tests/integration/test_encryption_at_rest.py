"""With SHOP_ENCRYPTION_KEY the event store holds no personal data in clear: a user's
email, name, phone and address are nowhere in the stored state, and load back intact
with the key; a process given another key, or none, refuses to start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from domain.users import User
from infra.wiring.process import Container, StoredEventsUnreadable, bootstrap
from tests.support.personal_data import Person, store_settings
from tests.support.production import ENCRYPTION_KEY
from tests.support.side_door import stored_states

pytestmark = pytest.mark.integration

OTHER_KEY = "3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8="
ADA = Person(
    "ada.cleartext-probe@example.com",
    "Ada Cleartextprobe",
    "+442079460123",
    {"line1": "12 Analytical Engine Lane", "city": "Marylebone", "postcode": "NW1 6XE"},
)


@pytest.fixture
def started(database_url: str, tmp_path: Path) -> Iterator[Container]:
    container = bootstrap(store_settings(database_url, tmp_path, ENCRYPTION_KEY))
    container.migrate()
    try:
        yield container
    finally:
        container.close()


def test_no_personal_data_is_stored_in_clear_and_it_loads_back(
    started: Container, database_url: str, tmp_path: Path
) -> None:
    user_id = ADA.register(started)
    states = stored_states(database_url)
    assert len(states) >= 3  # registered (user, email claim), profile updated
    assert ADA.found_in(states) == set()
    started.close()
    again = bootstrap(store_settings(database_url, tmp_path, ENCRYPTION_KEY))  # no cached aggregate
    try:
        user: User = again.users_app.repository.get(user_id)
        assert (user.email, user.name, user.phone, user.addresses) == (
            ADA.email,
            ADA.name,
            ADA.phone,
            [ADA.address],
        )
    finally:
        again.close()


def test_without_a_key_only_the_sealed_personal_fields_are_hidden(
    database_url: str, tmp_path: Path
) -> None:
    """The probe above can fail: unencrypted, the state is in clear (the account's
    role is found), and only the personal fields, sealed under the user's own key
    (ADR 0024), are not."""
    container = bootstrap(store_settings(database_url, tmp_path, None))
    try:
        container.migrate()
        ADA.register(container)
    finally:
        container.close()
    states = stored_states(database_url)
    assert any(b"password_hash" in state for state in states)
    assert ADA.found_in(states) == set()


@pytest.mark.parametrize("key", [OTHER_KEY, None], ids=["another key", "no key"])
def test_a_process_that_cannot_decode_the_events_refuses_to_start(
    started: Container, database_url: str, tmp_path: Path, key: str | None
) -> None:
    ADA.register(started)
    with pytest.raises(StoredEventsUnreadable, match="SHOP_ENCRYPTION_KEY"):
        bootstrap(store_settings(database_url, tmp_path, key))


def test_an_event_of_an_unknown_class_newest_in_its_log_does_not_stop_a_start(
    started: Container, database_url: str, tmp_path: Path
) -> None:
    """The start-up check reads the state, not the topic: a poison event is the
    projections' to dead-letter (ADR 0016), not a reason to stay down."""
    ADA.register(started)
    app = started.users_app
    newest = app.recorder.select_notifications(start=1, limit=1)[0]
    app.recorder.insert_events(
        [StoredEvent(uuid4(), 1, "gone_module:Gone", newest.state)]  # encrypted, as ours
    )
    bootstrap(store_settings(database_url, tmp_path, ENCRYPTION_KEY)).close()

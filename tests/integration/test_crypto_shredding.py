"""Personal fields are sealed under their data subject's own key (ADR 0024): stored
unreadable even without SHOP_ENCRYPTION_KEY, read back whole while the key exists,
and read as erased, in every process, once the subject is erased, with not one
stored byte changed (the audit chain hashes the stored bytes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest

from domain.users import EmailIndex, User, email_index_id, erased_email
from infra.postgres import subject_keys
from infra.wiring.process import Container, bootstrap
from tests.support.personal_data import Person, store_settings
from tests.support.production import ENCRYPTION_KEY
from tests.support.side_door import stored_states
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.integration

GRACE = Person(
    "grace.shredding-probe@example.com",
    "Grace Shreddingprobe",
    "+442079460999",
    {"line1": "7 Compiler Court", "city": "Arlington", "postcode": "VA 22201"},
)
EMAIL, NAME, PHONE, ADDRESS = GRACE.email, GRACE.name, GRACE.phone, GRACE.address


def _another_process(database_url: str, tmp_path: Path, key: str | None = None) -> Container:
    """A container with nothing cached, as a process started now has."""
    subject_keys._caches.clear()
    return bootstrap(store_settings(database_url, tmp_path, key))


@pytest.fixture
def started(database_url: str, tmp_path: Path) -> Iterator[Container]:
    container = bootstrap(store_settings(database_url, tmp_path))
    container.migrate()
    try:
        yield container
    finally:
        container.close()


def _key_row(database_url: str, subject: UUID) -> tuple[bytes | None, object]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT wrapped_key, erased_at FROM subject_keys WHERE subject_id = %s", (subject,)
        ).fetchone()
    assert row is not None
    return (None if row[0] is None else bytes(row[0])), row[1]


def test_sealed_fields_are_unreadable_as_stored_and_load_back_whole(
    started: Container, database_url: str, tmp_path: Path
) -> None:
    user_id = GRACE.register(started)
    assert GRACE.found_in(stored_states(database_url)) == set()
    again = _another_process(database_url, tmp_path)
    try:
        user: User = again.users_app.repository.get(user_id)
        claim: EmailIndex = again.users_app.repository.get(email_index_id(EMAIL))
    finally:
        again.close()
    assert (user.email, user.name, user.phone, user.addresses) == (EMAIL, NAME, PHONE, [ADDRESS])
    assert (claim.email, claim.user_id) == (EMAIL, user_id)


def test_erasure_shreds_the_key_and_every_process_reads_the_fields_as_erased(
    started: Container, database_url: str, tmp_path: Path
) -> None:
    user_id = GRACE.register(started)
    bystander = uuid4()
    started.user_commands.register(bystander, "bystander@example.com", STRONG_PASSWORD, "By")
    before = stored_states(database_url)

    started.user_commands.erase(user_id, by=uuid4())

    after = stored_states(database_url)
    assert set(before) <= set(after)  # not one stored byte rewritten
    assert _key_row(database_url, user_id)[0] is None
    assert _key_row(database_url, user_id)[1] is not None
    for container in (started, again := _another_process(database_url, tmp_path)):
        user: User = container.users_app.repository.get(user_id)
        claim: EmailIndex = container.users_app.repository.get(email_index_id(EMAIL))
        assert (user.email, user.name, user.phone, user.addresses, user.active) == (
            erased_email(user_id),
            "[erased]",
            None,
            [],
            False,
        )
        assert claim.email == erased_email(user_id)
        other: User = container.users_app.repository.get(bystander)
        assert (other.email, other.name) == ("bystander@example.com", "By")
    again.close()


def test_a_rebuilt_aggregate_of_an_erased_user_replays_as_erased_without_the_event(
    started: Container, database_url: str, tmp_path: Path
) -> None:
    """The key alone decides: deleted (the command's first step) and the erasure
    event not yet saved, the data already reads as erased, and a second erasure
    still records the event."""
    user_id = GRACE.register(started)
    started.users_app.mapper.keys.erase(user_id)  # type: ignore[attr-defined]
    again = _another_process(database_url, tmp_path)
    try:
        user: User = again.users_app.repository.get(user_id)
        assert (user.name, user.erased) == ("[erased]", False)
        assert again.user_commands.erase(user_id, by=uuid4()).position is not None
    finally:
        again.close()


def test_what_is_written_for_an_erased_subject_is_stored_as_erased(
    started: Container, database_url: str
) -> None:
    """No key is made again for an erased subject: an event written for it later (a
    snapshot, a late profile change) stores the erased value itself."""
    user_id = GRACE.register(started)
    started.user_commands.erase(user_id, by=uuid4())
    app = started.users_app
    app.take_snapshot(user_id)
    assert _key_row(database_url, user_id)[0] is None
    snapshot = app.snapshots.get(user_id) if app.snapshots else None
    assert snapshot is not None
    state = next(iter(snapshot)).state  # type: ignore[attr-defined]
    assert state["email"] == erased_email(user_id)
    assert GRACE.found_in(stored_states(database_url)) == set()


def test_keys_are_stored_wrapped_under_the_encryption_key(
    database_url: str, tmp_path: Path
) -> None:
    container = bootstrap(store_settings(database_url, tmp_path, ENCRYPTION_KEY))
    try:
        container.migrate()
        user_id = GRACE.register(container)
    finally:
        container.close()
    wrapped, _ = _key_row(database_url, user_id)
    assert wrapped is not None and wrapped[:1] == b"\x02" and len(wrapped) == 1 + 12 + 32 + 16
    again = _another_process(database_url, tmp_path, ENCRYPTION_KEY)
    try:
        user: User = again.users_app.repository.get(user_id)
        assert user.email == EMAIL
    finally:
        again.close()

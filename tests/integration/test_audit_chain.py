"""The audit chain on real Postgres (ADR 0023): the loop hashes every log's stored
records into ``audit_chain``, the heads are signed into the append-only file, and
``verify`` names the log and first position of each tampering done with SQL
(a changed byte, a deleted row, two rows swapped, a row inserted); an untouched
store verifies; a forged head is refused; verification needs no cipher key (so
erasure by key deletion, which rewrites no row, keeps verifying); a restarted loop
goes on from the chain's stored head; the loops are on /health."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from infra.entrypoints.http import create_app
from infra.postgres.audit_chain import PostgresChainStore
from infra.settings import Settings
from infra.wiring import audit
from infra.wiring.audit import Audit
from infra.wiring.process import Container, bootstrap
from streams.audit_chain.follower import ChainFollower
from streams.audit_chain.heads import ForgedHead, HeadSigner
from streams.audit_chain.links import StoredRecord
from streams.audit_chain.verification import Finding
from tests.conftest import TEST_SECRET
from tests.integration.kafka.workload import Workload
from tests.support.polling import eventually
from tests.support.production import ENCRYPTION_KEY

pytestmark = pytest.mark.integration

LOG = "catalog"


def area_of(container: Container) -> Audit:
    assert container.audit is not None
    return container.audit


def sql(container: Container, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(container.conninfo, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def positions(container: Container, log: str = LOG) -> list[int]:
    rows = sql(container, f"SELECT notification_id FROM {log}_events ORDER BY notification_id")
    return [int(row[0]) for row in rows]


@pytest.fixture
def signed(container: Container) -> Iterator[Container]:
    """A store with events in every log the workload writes, chained and signed; the
    catalog log has a gap of burned ids (as rolled-back saves leave) in the middle."""
    Workload(container).run(3)
    sql(
        container,
        "SELECT setval(pg_get_serial_sequence('catalog_events', 'notification_id'), "
        "(SELECT max(notification_id) FROM catalog_events) + 5)",
    )
    Workload(container, seed=2).run(3)
    area_of(container).sign()
    yield container


def findings(container: Container) -> list[Finding]:
    return area_of(container).verify().findings


def test_an_untouched_store_verifies_every_log(signed: Container) -> None:
    result = area_of(signed).verify()
    assert result.intact
    logs = {app.name.lower() for app in signed.applications()}
    assert set(result.head.logs) == {log for log in logs if positions(signed, log)}
    for log in result.head.logs:
        assert result.checked[log] == len(positions(signed, log))


def test_a_changed_byte_is_named_at_its_position(signed: Container) -> None:
    target = positions(signed)[4]
    sql(
        signed,
        "UPDATE catalog_events SET state = state || '\\x00'::bytea WHERE notification_id = %s",
        target,
    )
    (finding,) = findings(signed)
    assert (finding.log, finding.position) == (LOG, target)
    assert "changed" in finding.problem


def test_a_deleted_record_is_named_at_its_position(signed: Container) -> None:
    target = positions(signed)[3]
    sql(signed, "DELETE FROM catalog_events WHERE notification_id = %s", target)
    (finding,) = findings(signed)
    assert (finding.log, finding.position) == (LOG, target)
    assert "deleted" in finding.problem


def test_two_swapped_records_are_named_at_the_first(signed: Container) -> None:
    first, second = positions(signed)[2], positions(signed)[6]
    # Their positions exchanged (in three steps: the position is unique).
    sql(signed, "UPDATE catalog_events SET notification_id = -1 WHERE notification_id = %s", first)
    sql(
        signed,
        "UPDATE catalog_events SET notification_id = %s WHERE notification_id = %s",
        first,
        second,
    )
    sql(signed, "UPDATE catalog_events SET notification_id = %s WHERE notification_id = -1", second)
    (finding,) = findings(signed)
    assert (finding.log, finding.position) == (LOG, first)


def test_an_inserted_record_is_named_at_its_position(signed: Container) -> None:
    taken = positions(signed)
    gap = next(p for p in range(1, taken[-1]) if p not in taken)  # the burned ids
    sql(
        signed,
        "INSERT INTO catalog_events (originator_id, originator_version, topic, state, "
        "notification_id) SELECT %s, 1, topic, state, %s FROM catalog_events "
        "WHERE notification_id = %s",
        uuid4(),
        gap,
        taken[0],
    )
    (finding,) = findings(signed)
    assert (finding.log, finding.position) == (LOG, gap)
    assert "inserted" in finding.problem


def test_every_log_is_checked_not_only_one(signed: Container) -> None:
    users_first = positions(signed, "users")[0]
    sql(
        signed,
        "UPDATE users_events SET topic = topic || 'x' WHERE notification_id = %s",
        users_first,
    )
    sql(
        signed,
        "DELETE FROM inventory_events WHERE notification_id = %s",
        positions(signed, "inventory")[-1],
    )
    assert {(f.log) for f in findings(signed)} == {"users", "inventory"}


def test_a_chain_rewritten_with_the_records_is_caught_by_the_signed_head(
    signed: Container,
) -> None:
    """Whoever can write the database can recompute the chain, not the signature."""
    target = positions(signed)[1]
    sql(
        signed,
        "UPDATE catalog_events SET state = state || '\\x00'::bytea WHERE notification_id = %s",
        target,
    )
    sql(signed, "DELETE FROM audit_chain WHERE log = %s", LOG)
    area = area_of(signed)
    ChainFollower(area.store).catch_up()
    (finding,) = findings(signed)
    assert finding.log == LOG
    assert finding.position == area.anchor.latest().logs[LOG].position  # type: ignore[union-attr]
    assert "rewritten" in finding.problem


def test_a_forged_head_is_refused(signed: Container) -> None:
    area = area_of(signed)
    genuine = area.anchor.latest()
    assert genuine is not None
    forger = HeadSigner(Ed25519PrivateKey.generate())
    area.anchor.append(forger.sign(genuine.logs, genuine.signed_at))
    with pytest.raises(ForgedHead):
        area.verify()


def test_verification_needs_no_cipher_key(make_database: Any, tmp_path: Path) -> None:
    """Erasure by key deletion rewrites no stored byte: with every key gone the chain,
    which never decodes a record, verifies as before."""
    settings = Settings(
        database_url=make_database(),
        data_dir=tmp_path / "var",
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        encryption_key=ENCRYPTION_KEY,  # type: ignore[arg-type]
    )
    container = bootstrap(settings)
    try:
        container.migrate()
        Workload(container).run(2)
        area_of(container).sign()
    finally:
        container.close()
    without_keys = settings.model_copy(update={"encryption_key": None})
    with audit.standalone(without_keys) as area:
        result = area.verify()
    assert result.intact and result.checked["catalog"] > 0


class CountingStore(PostgresChainStore):
    """Where each read of a log began."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reads: list[tuple[str, int]] = []

    def records(self, log: str, after: int, limit: int) -> list[StoredRecord]:
        self.reads.append((log, after))
        return super().records(log, after, limit)


def test_the_loop_resumes_from_the_stored_chain_after_a_restart(container: Container) -> None:
    area = area_of(container)
    Workload(container).run(2)
    area.start()

    def caught_up() -> bool:
        for log in ("catalog", "users"):
            head = area.store.head(log)
            if head is None or head.position != positions(container, log)[-1]:
                return False
        return True

    eventually(caught_up, "the chain to reach every log's head")
    area.stop()
    before = area.store.heads()
    Workload(container, seed=3).run(2)
    restarted = CountingStore(container.pool)
    follower = ChainFollower(restarted, batch=5)
    follower.catch_up()
    new = sum(len(positions(container, log)) - before[log].seq for log in before) + sum(
        len(positions(container, log)) for log in restarted.logs() if log not in before
    )
    assert follower.hashed == new
    for log, after in restarted.reads:
        assert log not in before or after >= before[log].position
    area.sign()
    assert area.verify().intact  # the chain extended after the restart is the whole one


def test_the_loops_are_on_health(container: Container) -> None:
    area = area_of(container)
    app = create_app(container, run_projections=False)
    with TestClient(app) as client:
        area.start()
        loops = {loop["name"]: loop for loop in client.get("/health").json()["loops"]}
        area.stop()
    assert loops["audit_chain"]["running"] and loops["audit_signer"]["running"]


def test_the_signer_anchors_a_head_when_the_chain_moved(container: Container) -> None:
    area = area_of(container)
    Workload(container).run(1)
    area.follower.catch_up()
    assert area.signing.step()
    first = area.anchor.latest()
    assert first is not None and first.logs == area.store.heads()
    area.signing.step()  # nothing moved: nothing signed
    assert area.anchor.latest() == first
    Workload(container, seed=4).run(1)
    area.follower.catch_up()
    area.signing.step()
    latest = area.anchor.latest()
    assert latest is not None and latest != first and latest.logs == area.store.heads()


def test_followers_in_several_processes_never_fork_a_chain(container: Container) -> None:
    """The scaled mode runs the loop in every worker: they race for each batch, and
    the chain they leave is the one a single follower would have made."""
    Workload(container).run(4)
    stores = [PostgresChainStore(container.pool) for _ in range(3)]
    followers = [ChainFollower(store, batch=3) for store in stores]
    threads = [threading.Thread(target=follower.catch_up) for follower in followers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(len(positions(container, log)) for log in stores[0].logs())
    assert sum(f.hashed for f in followers) == total  # each record hashed into the chain once
    area = area_of(container)
    area.sign()
    assert area.verify().intact

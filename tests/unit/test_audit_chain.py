"""The hash chain's logic over the ports in memory: whatever one does to a log's
stored records after they were hashed (change a byte, delete one, swap two, insert
one), verification names that log and the first position touched; an untouched
log verifies; a head not signed by the key is refused before anything is
recomputed; and the follower resumes from the stored head, never from zero."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from streams.audit_chain.follower import ChainFollower, HeadSigning
from streams.audit_chain.heads import ForgedHead, HeadSigner, SignedHead, private_key
from streams.audit_chain.links import Link, StoredRecord, extend
from streams.audit_chain.verification import NoSignedHead, verify
from tests.support.memory_chain import MemoryAnchor, MemoryChainStore

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SIGNER = HeadSigner(Ed25519PrivateKey.generate())

records_strategy = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=3),  # the gap before it (rolled-back ids)
        st.uuids().map(str),
        st.integers(min_value=1, max_value=50),
        st.sampled_from(["domain.users:User.Registered", "domain.orders:Order.Placed"]),
        st.binary(max_size=40),
    ),
    min_size=2,
    max_size=30,
)


def as_records(rows: list[tuple[int, str, int, str, bytes]]) -> list[StoredRecord]:
    position, records = 0, []
    for gap, originator, version, topic, state in rows:
        position += gap
        records.append(StoredRecord(position, originator, version, topic, state))
    return records


def chained(records: list[StoredRecord]) -> tuple[MemoryChainStore, MemoryAnchor]:
    store = MemoryChainStore(events={"orders": list(records), "users": list(records[:1])})
    ChainFollower(store, batch=7).catch_up()
    anchor = MemoryAnchor()
    HeadSigning(store, SIGNER, anchor, lambda: AT).sign()
    return store, anchor


def findings(store: MemoryChainStore, anchor: MemoryAnchor) -> list[tuple[str, int | None]]:
    result = verify(store, anchor, SIGNER.verifier, batch=4)
    return [(f.log, f.position) for f in result.findings]


@given(records_strategy)
def test_an_untouched_log_verifies(rows: list[tuple[int, str, int, str, bytes]]) -> None:
    store, anchor = chained(as_records(rows))
    result = verify(store, anchor, SIGNER.verifier, batch=4)
    assert result.intact
    assert result.checked == {"orders": len(rows), "users": 1}


@given(records_strategy, st.data())
def test_a_changed_record_is_named_at_its_position(
    rows: list[tuple[int, str, int, str, bytes]], data: st.DataObject
) -> None:
    records = as_records(rows)
    store, anchor = chained(records)
    index = data.draw(st.integers(0, len(records) - 1))
    old = records[index]
    changes = [
        dataclasses.replace(old, originator_id=old.originator_id + "0"),
        dataclasses.replace(old, originator_version=old.originator_version + 1),
        dataclasses.replace(old, topic=old.topic + "x"),
        dataclasses.replace(old, state=old.state + b"\0"),
    ]
    store.events["orders"][index] = data.draw(st.sampled_from(changes))
    assert findings(store, anchor) == [("orders", old.position)]


@given(records_strategy, st.data())
def test_a_deleted_record_is_named_at_its_position(
    rows: list[tuple[int, str, int, str, bytes]], data: st.DataObject
) -> None:
    records = as_records(rows)
    store, anchor = chained(records)
    index = data.draw(st.integers(0, len(records) - 1))
    del store.events["orders"][index]
    assert findings(store, anchor) == [("orders", records[index].position)]


@given(records_strategy, st.data())
def test_two_swapped_records_are_named_at_the_first(
    rows: list[tuple[int, str, int, str, bytes]], data: st.DataObject
) -> None:
    records = as_records(rows)
    store, anchor = chained(records)
    first, second = sorted(
        data.draw(st.lists(st.integers(0, len(records) - 1), min_size=2, max_size=2, unique=True))
    )
    a, b = records[first], records[second]
    if dataclasses.replace(a, position=0) == dataclasses.replace(b, position=0):
        return  # two identical records: swapping them changes no byte
    events = store.events["orders"]
    events[first] = dataclasses.replace(b, position=a.position)
    events[second] = dataclasses.replace(a, position=b.position)
    assert findings(store, anchor) == [("orders", a.position)]


@given(records_strategy, st.data())
def test_an_inserted_record_is_named_at_its_position(
    rows: list[tuple[int, str, int, str, bytes]], data: st.DataObject
) -> None:
    records = as_records(rows)
    store, anchor = chained(records)
    taken = {r.position for r in records}
    free = [p for p in range(1, records[-1].position) if p not in taken]
    if not free:
        return  # no gap below the head to insert into
    position = data.draw(st.sampled_from(free))
    store.events["orders"].append(StoredRecord(position, "intruder", 1, "x:Y", b"{}"))
    assert findings(store, anchor) == [("orders", position)]


def test_a_chain_rewritten_along_with_its_records_is_caught_at_the_signed_head() -> None:
    records = as_records(
        [(1, "a", 1, "t:T", b"x"), (1, "b", 1, "t:T", b"y"), (1, "c", 1, "t:T", b"z")]
    )
    store, anchor = chained(records)
    # Whoever can write the database changes a record and recomputes the chain...
    store.events["orders"][1] = dataclasses.replace(records[1], state=b"forged")
    store.chain["orders"] = extend("orders", None, store.events["orders"])
    # ...but not the signed head.
    assert findings(store, anchor) == [("orders", 3)]


def test_a_head_not_signed_by_the_key_is_refused() -> None:
    store, anchor = chained(as_records([(1, "a", 1, "t:T", b"x")]))
    genuine = anchor.heads[-1]
    tampered_logs = {**genuine.logs, "orders": Link(1, 1, b"\0" * 32)}
    anchor.append(dataclasses.replace(genuine, logs=tampered_logs))  # signature of other logs
    with pytest.raises(ForgedHead):
        verify(store, anchor, SIGNER.verifier)
    other = HeadSigner(Ed25519PrivateKey.generate())
    anchor.append(other.sign(genuine.logs, AT))  # a valid signature, by another key
    with pytest.raises(ForgedHead, match="it names key"):
        verify(store, anchor, SIGNER.verifier)


def test_a_log_newer_than_the_signed_head_is_named_as_such() -> None:
    store, anchor = chained(as_records([(1, "a", 1, "t:T", b"x")]))
    store.events["reviews"] = as_records([(1, "r", 1, "t:T", b"y")])
    result = verify(store, anchor, SIGNER.verifier)
    assert result.intact and result.new_logs == ["reviews"]


def test_nothing_signed_yet_is_said() -> None:
    with pytest.raises(NoSignedHead):
        verify(MemoryChainStore(events={"orders": []}), MemoryAnchor(), SIGNER.verifier)


def test_a_signed_head_round_trips_through_its_json() -> None:
    _, anchor = chained(as_records([(1, "a", 1, "t:T", b"x"), (2, "b", 3, "t:T", b"")]))
    head = anchor.heads[-1]
    again = SignedHead.from_json(head.to_json())
    assert again == head
    SIGNER.verifier.check(again)


def test_the_follower_resumes_from_the_stored_head() -> None:
    records = as_records([(1, str(n), 1, "t:T", b"s") for n in range(10)])
    store = MemoryChainStore(events={"orders": records[:6]})
    first = ChainFollower(store, batch=4)
    first.catch_up()
    assert first.hashed == 6
    store.events["orders"] = records
    store.reads.clear()
    restarted = ChainFollower(store, batch=4)  # a new process: nothing in memory
    restarted.catch_up()
    assert restarted.hashed == 4
    assert min(after for _, after in store.reads) == records[5].position
    assert store.chain["orders"] == extend("orders", None, records)


def test_keys_are_32_bytes_in_base64() -> None:
    with pytest.raises(ValueError, match="not 32"):
        private_key("AAAA")
    with pytest.raises(ValueError, match="base64"):
        private_key("not a key!")

"""The resequencer hands out a log's events in log order whatever order (and however
many copies) they arrive in, and never hands out an event after a missing one."""

from __future__ import annotations

from functools import partial
from uuid import uuid4

from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from streams.assignor import assign_topics
from streams.kafka_codec import RelayedEvent, UndecodableMessage, decode
from streams.resequencer import Resequencer


def event(position: int, prev: int) -> RelayedEvent:
    stored = StoredEvent(uuid4(), 1, "domain.users:User.Registered", b'{"a":1}')
    return RelayedEvent("users", position, prev, stored)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[int], list[RelayedEvent]]:
    """A log with gaps (burned ids), its events shuffled, some sent twice."""
    ids = sorted(draw(st.sets(st.integers(1, 200), min_size=1, max_size=60)))
    events = [event(p, prev) for p, prev in zip(ids, [0, *ids[:-1]], strict=True)]
    copies = draw(st.lists(st.sampled_from(events), max_size=20))
    return ids, draw(st.permutations(events + copies))


@given(deliveries(), st.data())
def test_the_chain_is_the_log_in_order_and_stops_at_a_missing_event(
    delivered: tuple[list[int], list[RelayedEvent]], data: st.DataObject
) -> None:
    ids, arrivals = delivered
    missing = data.draw(st.sampled_from(ids))
    resequencer = Resequencer()
    acks: list[int] = []
    for e in arrivals:
        if e.position != missing:
            assert resequencer.offer(e, partial(acks.append, e.position), 0) == []
    before = [p for p in ids if p < missing]
    assert [e.position for e in resequencer.chain(0, 1000)] == before
    if missing != ids[-1]:
        assert resequencer.waiting_after(before[-1] if before else 0) == missing
    for ack in resequencer.release(before[-1] if before else 0):
        ack()
    assert sorted(set(acks)) == before  # only applied events are acknowledged
    resequencer.offer(event(missing, before[-1] if before else 0), lambda: None, 0)
    start = before[-1] if before else 0
    assert [e.position for e in resequencer.chain(start, 1000)] == [p for p in ids if p > start]


def test_a_copy_of_an_applied_event_is_acknowledged_at_once() -> None:
    resequencer = Resequencer()
    acked: list[bool] = []
    due = resequencer.offer(event(5, 3), lambda: acked.append(True), applied_by_all=7)
    assert len(due) == 1 and len(resequencer) == 0


def test_topics_are_shared_whole_and_evenly_and_stay_where_they_were() -> None:
    topics = ["a", "b", "c", "d", "e"]
    everyone = {"w1": set(topics), "w2": set(topics)}
    owned = assign_topics(topics, everyone, previous={})
    assert sorted(owned["w1"] + owned["w2"]) == topics
    assert {len(owned["w1"]), len(owned["w2"])} == {2, 3}
    # A third worker joins: each keeps what it can, the newcomer gets its share.
    joined = {**everyone, "w3": set(topics)}
    again = assign_topics(topics, joined, previous={k: set(v) for k, v in owned.items()})
    assert sorted(t for owned_now in again.values() for t in owned_now) == topics
    assert all(len(v) <= 2 for v in again.values()) and again["w3"]
    assert all(set(again[m]) <= set(owned[m]) for m in ("w1", "w2"))
    # Only subscribers get a topic.
    assert assign_topics(["x"], {"w1": set(), "w2": {"x"}}, previous={}) == {"w1": [], "w2": ["x"]}


@given(st.binary(max_size=200))
def test_anything_but_a_relayed_event_is_refused_cleanly(value: bytes) -> None:
    try:
        decode(value)
    except UndecodableMessage:
        return


def test_a_relayed_event_round_trips() -> None:
    e = event(42, 40)
    assert decode(e.encode()) == e

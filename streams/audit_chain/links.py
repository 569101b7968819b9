"""The chain's arithmetic: what of a stored event record is hashed, and how each
link follows from the one before. Pure: the bytes in, the digest out.

A link covers the record exactly as stored (its position, aggregate id and
version, topic and state bytes, whatever cipher wrote them), never a decoded
form: deleting a data subject's key later changes no stored byte, so the chain
still holds; changing, deleting, moving or inserting a row breaks it there."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

CHAIN_VERSION = 1
_DOMAIN = b"eventshop audit chain v1\0"


@dataclass(frozen=True)
class StoredRecord:
    """One row of a log's events table, as stored."""

    position: int
    """Its notification id."""
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class Link:
    """The chain after one record: the ``seq``-th record hashed into its log's chain."""

    seq: int
    position: int
    link: bytes


def genesis(log: str) -> bytes:
    """The link before a log's first record: bound to the log's name, so that one
    log's chain cannot stand in for another's."""
    return hashlib.sha256(_DOMAIN + log.encode()).digest()


def record_bytes(record: StoredRecord) -> bytes:
    """Every field, length-prefixed: no two different records encode alike."""
    originator = record.originator_id.encode()
    topic = record.topic.encode()
    return b"".join(
        (
            struct.pack(">qqI", record.position, record.originator_version, len(originator)),
            originator,
            struct.pack(">I", len(topic)),
            topic,
            struct.pack(">Q", len(record.state)),
            record.state,
        )
    )


def next_link(previous: bytes, record: StoredRecord) -> bytes:
    return hashlib.sha256(previous + record_bytes(record)).digest()


def extend(log: str, last: Link | None, records: list[StoredRecord]) -> list[Link]:
    """The links of ``records`` (in log order) after ``last`` (None: the log's start)."""
    link, seq = (genesis(log), 0) if last is None else (last.link, last.seq)
    links = []
    for record in records:
        link = next_link(link, record)
        seq += 1
        links.append(Link(seq, record.position, link))
    return links

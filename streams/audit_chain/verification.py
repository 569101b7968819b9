"""``shop audit verify``: every log against the last signed head. The signature
first (a head that does not verify is refused, nothing is recomputed from it),
then each log's records are hashed again from its start and walked beside the
stored chain: the first record whose position or bytes no longer give the stored
link is named, and the signed head's link must be the one recomputed at its
position (so a chain table rewritten along with the events is caught too)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from streams.audit_chain.heads import HeadVerifier, SignedHead
from streams.audit_chain.links import Link, StoredRecord, genesis, next_link
from streams.audit_chain.ports import ChainStore, HeadAnchor

BATCH = 5000


class NoSignedHead(LookupError):
    """Nothing was anchored yet: there is nothing to verify against."""


@dataclass(frozen=True)
class Finding:
    log: str
    position: int | None
    """The first position that no longer matches (None: the whole log)."""
    problem: str


@dataclass
class Verification:
    head: SignedHead
    checked: dict[str, int] = field(default_factory=dict)
    """Records recomputed per log."""
    unsigned: dict[str, int] = field(default_factory=dict)
    """Records per log past the signed head (checked against the stored chain only)."""
    findings: list[Finding] = field(default_factory=list)
    new_logs: list[str] = field(default_factory=list)
    """Logs in the store the signed head does not name yet (checked from the next one)."""

    @property
    def intact(self) -> bool:
        return not self.findings


def verify(
    store: ChainStore, anchor: HeadAnchor, verifier: HeadVerifier, batch: int = BATCH
) -> Verification:
    """Raises ``NoSignedHead``, ``MalformedHead`` or ``ForgedHead`` (the signature
    first); otherwise the findings, at most one per log: its first mismatch."""
    head = anchor.latest()
    if head is None:
        raise NoSignedHead(f"no signed head at {anchor.where} yet: run `shop audit sign`")
    verifier.check(head)
    result = Verification(head)
    present = set(store.logs())
    result.new_logs = sorted(present - set(head.logs))
    for name, signed in sorted(head.logs.items()):
        if name not in present:
            result.findings.append(Finding(name, None, "its events table is gone"))
            continue
        finding = _check_log(store, name, signed, batch, result)
        if finding is not None:
            result.findings.append(finding)
    return result


def _check_log(
    store: ChainStore, name: str, signed: Link, batch: int, result: Verification
) -> Finding | None:
    records = _records(store, name, batch)
    stored = _links(store, name, batch)
    link = genesis(name)
    checked = 0
    while True:
        record, kept = next(records, None), next(stored, None)
        if kept is None:
            if record is not None and record.position <= signed.position:
                return Finding(name, record.position, "a record the chain never hashed")
            if checked < signed.seq:
                return Finding(
                    name, signed.position, "the stored chain ends before the signed head"
                )
            return None
        if record is None:
            return Finding(name, kept.position, "the record hashed here is gone (deleted)")
        if record.position < kept.position:
            return Finding(name, record.position, "a record the chain never hashed (inserted)")
        if record.position > kept.position:
            return Finding(name, kept.position, "the record hashed here is gone (deleted)")
        link = next_link(link, record)
        if link != kept.link:
            return Finding(
                name, record.position, "the stored record no longer gives its link (changed)"
            )
        checked += 1
        if kept.seq == signed.seq and (kept.position != signed.position or link != signed.link):
            return Finding(
                name,
                signed.position,
                "the chain up to the signed head was rewritten: its link is not the one signed",
            )
        if kept.seq <= signed.seq:
            result.checked[name] = checked
        else:
            result.unsigned[name] = kept.seq - signed.seq


def _records(store: ChainStore, name: str, batch: int) -> Iterator[StoredRecord]:
    after = 0
    while page := store.records(name, after, batch):
        yield from page
        after = page[-1].position


def _links(store: ChainStore, name: str, batch: int) -> Iterator[Link]:
    after = 0
    while page := store.links(name, after, batch):
        yield from page
        after = page[-1].seq

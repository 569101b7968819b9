"""The audit chain's ports in memory: logs as lists of stored records, the chain as
lists of links, the anchor as a list of heads (unit tests of the chain's logic)."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.audit_chain.heads import SignedHead
from streams.audit_chain.links import Link, StoredRecord


@dataclass
class MemoryChainStore:
    events: dict[str, list[StoredRecord]] = field(default_factory=dict)
    chain: dict[str, list[Link]] = field(default_factory=dict)
    reads: list[tuple[str, int]] = field(default_factory=list)
    """Every ``records`` call's log and ``after``: where a follower started reading."""

    def logs(self) -> list[str]:
        return sorted(self.events)

    def records(self, log: str, after: int, limit: int) -> list[StoredRecord]:
        self.reads.append((log, after))
        ordered = sorted(self.events[log], key=lambda r: r.position)
        return [r for r in ordered if r.position > after][:limit]

    def links(self, log: str, after_seq: int, limit: int) -> list[Link]:
        return [k for k in self.chain.get(log, []) if k.seq > after_seq][:limit]

    def head(self, log: str) -> Link | None:
        links = self.chain.get(log)
        return links[-1] if links else None

    def heads(self) -> dict[str, Link]:
        return {log: links[-1] for log, links in self.chain.items() if links}

    def append(self, log: str, expected: Link | None, links: list[Link]) -> bool:
        if self.head(log) != expected:
            return False
        self.chain.setdefault(log, []).extend(links)
        return True


@dataclass
class MemoryAnchor:
    heads: list[SignedHead] = field(default_factory=list)
    where: str = "memory"

    def append(self, head: SignedHead) -> None:
        self.heads.append(head)

    def latest(self) -> SignedHead | None:
        return self.heads[-1] if self.heads else None

"""What the chain needs of the world: the logs and their stored chain (Postgres,
``infra/postgres/audit_chain.py``), and the anchor the signed heads are written to
(an append-only file, ``infra/files/audit_heads.py``, or S3 under Object Lock,
``infra/amazon/s3_audit_heads.py``)."""

from __future__ import annotations

from typing import Protocol

from streams.audit_chain.heads import SignedHead
from streams.audit_chain.links import Link, StoredRecord


class ChainStore(Protocol):
    def logs(self) -> list[str]:
        """Every log in the event store (each Application's events table), by name."""
        ...

    def records(self, log: str, after: int, limit: int) -> list[StoredRecord]:
        """Up to ``limit`` of ``log``'s records past position ``after``, in log order."""
        ...

    def links(self, log: str, after_seq: int, limit: int) -> list[Link]:
        """Up to ``limit`` of ``log``'s stored links past ``after_seq``, in order."""
        ...

    def head(self, log: str) -> Link | None:
        """``log``'s last stored link; None before its first record was hashed."""
        ...

    def heads(self) -> dict[str, Link]:
        """Every log's last stored link."""
        ...

    def append(self, log: str, expected: Link | None, links: list[Link]) -> bool:
        """Stores ``links`` after ``expected`` in one transaction; False (nothing
        stored) if ``log``'s head is no longer ``expected`` (another process got
        there first)."""
        ...


class HeadAnchor(Protocol):
    """Where signed heads are kept out of the database's reach."""

    where: str
    """Named in the CLI's answers (a path, an S3 address)."""

    def append(self, head: SignedHead) -> None: ...

    def latest(self) -> SignedHead | None:
        """The newest signed head; None before the first. Raises ``MalformedHead``."""
        ...

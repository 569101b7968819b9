"""The loops that keep the chain: one hashes every log's new records into its
chain (in batches, from the chain's stored head, so a restart resumes where the
last run stopped and nothing is hashed twice), the other signs the heads now and
then and anchors them. Both run ``Supervised`` beside the projections."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from streams.audit_chain.heads import HeadSigner, SignedHead
from streams.audit_chain.links import extend
from streams.audit_chain.ports import ChainStore, HeadAnchor

log = logging.getLogger(__name__)

BATCH = 2000


class ChainFollower:
    def __init__(self, store: ChainStore, batch: int = BATCH) -> None:
        self._store = store
        self._batch = batch
        self.hashed = 0
        """Records hashed by this process (the benchmark reads it)."""

    def step(self) -> bool:
        """One batch of every log that has new records; True when all are caught up."""
        idle = True
        for name in self._store.logs():
            last = self._store.head(name)
            records = self._store.records(name, last.position if last else 0, self._batch)
            if not records:
                continue
            if self._store.append(name, last, extend(name, last, records)):
                self.hashed += len(records)
            idle = idle and len(records) < self._batch
        return idle

    def catch_up(self) -> None:
        while not self.step():
            pass


class HeadSigning:
    def __init__(
        self,
        store: ChainStore,
        signer: HeadSigner,
        anchor: HeadAnchor,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._signer = signer
        self._anchor = anchor
        self._clock = clock
        self._last: SignedHead | None = None

    def sign(self) -> SignedHead:
        """Signs every log's head now and anchors it."""
        head = self._signer.sign(self._store.heads(), self._clock())
        self._anchor.append(head)
        self._last = head
        log.info("audit chain heads signed and anchored at %s", self._anchor.where)
        return head

    def step(self) -> bool:
        """Signs if a head moved since this process last signed (the loop's step; a
        process signs once at its start)."""
        heads = self._store.heads()
        if heads and (self._last is None or dict(self._last.logs) != heads):
            self.sign()
        return True

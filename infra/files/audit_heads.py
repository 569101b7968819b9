"""Signed heads in an append-only file (the embedded mode's anchor): one JSON line
per signature, opened with O_APPEND and synced before the signature counts, so
the history of heads is kept and a crash leaves at most a partial last line. The
database cannot reach it; the file's own protection (its owner, ``chattr +a`` where
the operator can set it, a copy elsewhere) is the operator's: ADR 0023."""

from __future__ import annotations

import os
from pathlib import Path

from streams.audit_chain.heads import MalformedHead, SignedHead

TAIL_BYTES = 64 * 1024
"""A signed head is well under this (a few hundred bytes per log)."""


class FileHeadAnchor:
    def __init__(self, path: Path) -> None:
        self._path = path
        self.where = str(path)

    def append(self, head: SignedHead) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        line = (head.to_json() + "\n").encode()
        descriptor = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def latest(self) -> SignedHead | None:
        try:
            with self._path.open("rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(0, size - TAIL_BYTES))
                tail = file.read()
        except FileNotFoundError:
            return None
        lines = [line for line in tail.split(b"\n") if line.strip()]
        if not lines:
            return None
        try:
            return SignedHead.from_json(lines[-1].decode())
        except UnicodeDecodeError as error:
            raise MalformedHead(f"the last line of {self._path} is not text") from error

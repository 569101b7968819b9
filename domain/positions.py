"""Positions in the event logs, handed to clients as consistency tokens.

A command answers with the position it wrote (``users:1042``); a query that passes
it back is answered only from a read model that has processed that position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"^([a-z][a-z0-9_]{0,62}):([0-9]{1,18})$")


class MalformedToken(ValueError):
    """A consistency token that is not ``log:position``."""


@dataclass(frozen=True, order=True)
class Position:
    log: str
    id: int

    def __str__(self) -> str:
        return f"{self.log}:{self.id}"


def parse_positions(header: str) -> list[Position]:
    """Parse a comma-separated list of ``log:position`` tokens."""
    positions = []
    for part in header.split(","):
        match = _TOKEN.match(part.strip())
        if match is None:
            raise MalformedToken(f"not a consistency token: {part.strip()[:40]!r}")
        positions.append(Position(match[1], int(match[2])))
    return positions


def format_positions(positions: list[Position]) -> str:
    return ",".join(str(p) for p in positions)

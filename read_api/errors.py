"""Refusals of the read API, each with its HTTP status and stable problem code
(``domain.refusals``: malformed query input is ``BadQuery``)."""

from __future__ import annotations

from domain.refusals import Refused


class ProjectionLagging(Refused):
    """Read-your-writes could not be honoured in time. Answering stale data to a
    client that asked for its own write would be a silent lie: say so, and when
    to come back."""

    status = 503
    code = "projection-lagging"


class SearchDown(Refused):
    """The search engine cannot answer now (unreachable, or rebuilding an index it
    lost); the rest of the API still works."""

    status = 503
    code = "search-unavailable"

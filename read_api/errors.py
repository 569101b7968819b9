"""Refusals of the read API, each with its HTTP status and stable problem code."""

from __future__ import annotations


class QueryRefused(Exception):
    status = 400
    code = "bad-query"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class ProjectionLagging(QueryRefused):
    """Read-your-writes could not be honoured in time. Answering stale data to a
    client that asked for its own write would be a silent lie: say so, and when
    to come back."""

    status = 503
    code = "projection-lagging"


class SearchDown(QueryRefused):
    """The search engine cannot answer now (unreachable, or rebuilding an index it
    lost); the rest of the API still works."""

    status = 503
    code = "search-unavailable"

"""The one base of the refusals that are not domain rules: a request the write side,
the read side or a projection's query refuses (a taken email, a lagging view, a
cursor this API did not issue). Each names its status and a stable problem code;
the HTTP edge maps them all in one place to RFC 9457 problem+json. Here because
each side raises them and ``domain`` is the one package every side may import;
nothing in it knows a framework (a status is a number, headers are strings)."""

from __future__ import annotations


class Refused(Exception):
    status = 400
    code = "bad-request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadQuery(Refused):
    """Query input that cannot be answered (a filter, a token, a cursor, a search)."""

    code = "bad-query"

"""The actor of an event as the read API answers it (``domain.actors``)."""

from __future__ import annotations

from pydantic import Field

from domain.actors import ActorKind
from read_api.catalog_models import Answer


class ActorAnswer(Answer):
    kind: ActorKind = Field(
        description="user (an HTTP request), system (a policy, a background loop, the "
        "command line), webhook (a payment provider), unknown (stored before actors were)"
    )
    id: str | None = Field(
        description="The user's id (null: a request without a bearer token), the "
        "policy's, loop's or command's name, or the webhook's provider"
    )
    request_id: str | None = Field(description="The X-Request-ID of the request")
    client_address: str | None = Field(description="The client's address, past trusted proxies")

"""Who is acting now, as the edges say it, and the stamp it leaves on each event saved.

The edges name the actor; command handlers never see it (no signature changes):

- an HTTP request: the request middleware sets a source that answers the principal
  its authentication noted, the request id and the client's address (after the
  trusted proxies' headers), read when the event is saved, so after authentication;
- a payment webhook: ``as_webhook(provider)``, around the commands it runs;
- a policy or saga: the runners apply each batch ``acting_as(Actor.system(name))``
  (``streams.poison``), so do the supervised background loops (``streams.supervision``);
- the command line: ``shop``'s callback (``infra.entrypoints.cli_actor``).

``ContextApplication._record``, which every save goes through, stamps each event with
``current_actor()``: ``unknown`` when no edge named one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar, Token

from domain.actors import ACTOR, UNKNOWN_ACTOR, Actor, ActorKind

ActorSource = Callable[[], Actor]
"""Answers the actor when an event is saved (an HTTP request knows its principal
only once authenticated, after the middleware that sets the source ran)."""

_SOURCE: ContextVar[ActorSource | None] = ContextVar("actor_source", default=None)


def current_actor() -> Actor:
    source = _SOURCE.get()
    return UNKNOWN_ACTOR if source is None else source()


def set_source(source: ActorSource) -> Token[ActorSource | None]:
    """For an edge that cannot use ``acting`` (a middleware resets it itself)."""
    return _SOURCE.set(source)


def reset_source(token: Token[ActorSource | None]) -> None:
    _SOURCE.reset(token)


@contextmanager
def acting(source: ActorSource) -> Iterator[None]:
    token = _SOURCE.set(source)
    try:
        yield
    finally:
        _SOURCE.reset(token)


def acting_as(actor: Actor) -> AbstractContextManager[None]:
    return acting(lambda: actor)


def carried_to_threads() -> Callable[[], None]:
    """A thread pool's ``initializer``: its threads act as the calling thread does now
    (a new thread starts with an empty context, so its saves would read unknown)."""
    source = _SOURCE.get()

    def initialise() -> None:
        if source is not None:
            _SOURCE.set(source)

    return initialise


@contextmanager
def as_webhook(provider: str) -> Iterator[None]:
    """The provider's webhook acts, from the request that delivered it."""
    outer = _SOURCE.get()

    def webhook() -> Actor:
        base = UNKNOWN_ACTOR if outer is None else outer()
        return Actor(ActorKind.WEBHOOK, provider, base.request_id, base.client_address)

    with acting(webhook):
        yield


def stamp_actor(events: Iterable[object]) -> None:
    """Give each event to be saved the current actor."""
    actor = current_actor().as_mapping()
    for event in events:
        # Domain events are frozen dataclasses: the attribute goes in past __setattr__,
        # as eventsourcing's mapper puts attributes in when it loads one.
        vars(event)[ACTOR] = dict(actor)

"""``shop dlq replay`` applies a policy's dead letter again as the policy itself: what
the policy saves names it, not the operator's command line that replays it."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from commands.actors import acting_as
from commands.application import ContextApplication
from domain.actors import Actor, actor_of
from domain.carts import open_cart
from infra.wiring.process import Container
from infra.wiring.views import make_view
from projections import dead_letters
from projections.engine import View
from streams.poison import replay
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.integration


class Store(ContextApplication):
    pass


class OpenerView(View):
    name = "cart_opener"
    follows = ("users",)


class CartOpener(Projection[OpenerView]):
    """A policy: each event it is given saves a new cart."""

    name = "cart_opener"

    def __init__(self, view: OpenerView, store: Store) -> None:
        super().__init__(view)
        self.store = store

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.store.save(open_cart(uuid4()))


def test_a_replayed_policy_letter_acts_as_the_policy(container: Container) -> None:
    container.user_commands.register(uuid4(), "replayed@example.com", STRONG_PASSWORD, "R")
    app = container.users_app
    first = app.recorder.select_notifications(start=1, limit=1)[0]
    view = make_view(container.conninfo, OpenerView, 1)
    assert isinstance(view, OpenerView)
    try:
        view.dead_letter(Tracking(app.name, first.id), UUID(str(first.originator_id)), "boom")
        with container.pool.connection() as conn:
            letters = dead_letters.open_letters(conn, "cart_opener")
        assert len(letters) == 1
        store = Store(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        with acting_as(Actor.system("cli:shop dlq replay")):
            outcomes = replay(letters, app, view, CartOpener(view, store))
        assert [outcome.failure for outcome in outcomes] == [None]
        saved = [
            actor_of(store.mapper.to_domain_event(n))
            for n in store.recorder.select_notifications(1, 10)
        ]
        assert saved == [Actor.system("cart_opener")]
    finally:
        view.datastore.close()

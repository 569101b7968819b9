"""Every event saved names its actor, as the edge it came through says it: an HTTP
request (the principal once authenticated, the request id, the client's address past
the trusted proxies), a payment webhook, a policy applied by a runner, a supervised
background loop, the command line; ``unknown`` where no edge named one and for events
stored before actors were. The actor travels in the stored state, so the Kafka
codec carries it to the scaled mode's workers."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Annotated, Any
from uuid import UUID, uuid4

import pytest
import typer
from eventsourcing.persistence import Tracking
from eventsourcing.popo import POPOTrackingRecorder
from eventsourcing.projection import Projection
from fastapi import Depends, FastAPI, Header
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from commands.actors import acting_as, as_webhook, current_actor
from commands.application import ContextApplication
from domain.access import Principal
from domain.actors import ACTOR, UNKNOWN_ACTOR, Actor, ActorKind, actor_of
from domain.carts import open_cart
from domain.users import Role
from infra.entrypoints import cli
from infra.entrypoints.cli_actor import act_as_command_line
from infra.entrypoints.request_context import noting_principal
from infra.entrypoints.request_metrics import ObservedRequests
from streams.kafka_codec import decode, encode
from streams.poison import Failures, apply_guarded
from streams.supervision import Loops, Supervised
from tests.support.polling import eventually

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
PROXY = "10.0.0.7"
SHOPPER = UUID("6d0f8a57-1c9e-4c43-9a59-0c2b8f0f4a11")


class Store(ContextApplication):
    pass


def actors_saved(store: Store) -> list[Actor]:
    return [
        actor_of(store.mapper.to_domain_event(n))
        for n in store.recorder.select_notifications(1, 100)
    ]


# --- the HTTP edge ---------------------------------------------------------------------


async def _authenticate(token: str | None) -> Principal:
    assert token == "good"
    return Principal(SHOPPER, uuid4(), frozenset({Role.CUSTOMER.value}))


_noted = noting_principal(_authenticate)


async def _maybe_principal(
    authorization: Annotated[str | None, Header()] = None,
) -> Principal | None:
    return None if authorization is None else await _noted(authorization.removeprefix("Bearer "))


def http_app(store: Store) -> FastAPI:
    """A def route saving a cart, behind the middlewares ``create_app`` puts around
    every route, in the same order: the request's own outermost, the proxies' inside."""
    app = FastAPI()

    @app.post("/carts")
    def save(principal: Annotated[Principal | None, Depends(_maybe_principal)]) -> dict[str, str]:
        store.save(open_cart(uuid4()))
        return {}

    @app.post("/webhook")
    def webhook() -> dict[str, str]:
        with as_webhook("stripe"):
            store.save(open_cart(uuid4()))
        return {}

    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=[PROXY])
    app.add_middleware(ObservedRequests, routes=app.routes)
    return app


@pytest.fixture
def store() -> Store:
    return Store(env=POPO)


def test_a_request_names_its_principal_its_id_and_the_client_past_the_proxy(
    store: Store,
) -> None:
    with TestClient(http_app(store), client=(PROXY, 4000)) as client:
        answer = client.post(
            "/carts",
            headers={
                "Authorization": "Bearer good",
                "X-Request-ID": "req-audit-1",
                "X-Forwarded-For": "203.0.113.9",
            },
        )
        assert answer.status_code == 200, answer.text
    assert actors_saved(store) == [
        Actor(ActorKind.USER, str(SHOPPER), "req-audit-1", "203.0.113.9")
    ]


def test_a_request_without_a_token_is_a_user_without_an_id(store: Store) -> None:
    with TestClient(http_app(store), client=("192.0.2.4", 5000)) as client:
        answer = client.post("/carts", headers={"X-Forwarded-For": "203.0.113.9"})
    (actor,) = actors_saved(store)
    # Not a trusted proxy: its X-Forwarded-For is not believed.
    assert (actor.kind, actor.id, actor.client_address) == (ActorKind.USER, None, "192.0.2.4")
    assert actor.request_id == answer.headers["X-Request-ID"]


def test_a_webhook_names_its_provider_and_keeps_the_request(store: Store) -> None:
    with TestClient(http_app(store), client=("192.0.2.5", 5000)) as client:
        client.post("/webhook", headers={"X-Request-ID": "evt-delivery-3"})
    assert actors_saved(store) == [
        Actor(ActorKind.WEBHOOK, "stripe", "evt-delivery-3", "192.0.2.5")
    ]


# --- policies, loops, the command line --------------------------------------------------


class SavingPolicy(Projection[POPOTrackingRecorder]):
    """A policy as the runners hold one: each event it is given saves a new cart."""

    name = "cart_opener"

    def __init__(self, view: POPOTrackingRecorder, store: Store) -> None:
        super().__init__(view)
        self.store = store

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.store.save(open_cart(uuid4()))


def test_a_policy_applied_by_a_runner_acts_as_itself(store: Store) -> None:
    upstream = Store(env=POPO)
    upstream.save(open_cart(uuid4()))
    (notification,) = upstream.recorder.select_notifications(1, 10)
    delivery = (upstream.mapper.to_domain_event(notification), Tracking("Store", 1))
    policy = SavingPolicy(POPOTrackingRecorder(), store)
    with acting_as(Actor(ActorKind.USER, "someone")):  # what the runner's thread had
        apply_guarded(policy.view, policy, "Store", [delivery], Failures())
        assert current_actor() == Actor(ActorKind.USER, "someone")  # restored after
    assert actors_saved(store) == [Actor.system("cart_opener")]


def test_a_supervised_loop_acts_as_itself(store: Store) -> None:
    done = threading.Event()

    def step() -> bool:
        if not done.is_set():
            store.save(open_cart(uuid4()))
            done.set()
        return True

    loop = Supervised("authentication_timeouts", step, interval=0.05, loops=Loops())
    loop.start()
    try:
        eventually(done.is_set, "the loop's save")
    finally:
        loop.stop()
    assert actors_saved(store) == [Actor.system("authentication_timeouts")]


def test_a_command_line_command_acts_as_itself(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = typer.Typer()
    shop.callback()(act_as_command_line)
    users = typer.Typer()
    shop.add_typer(users, name="users")

    @users.command("create-admin")
    def create_admin(email: str = "", name: str = "") -> None:
        store.save(open_cart(uuid4()))

    # An option's value that is also a command's name is not taken for one.
    argv = ["users", "create-admin", "--email", "a@example.com", "--name", "users"]
    monkeypatch.setattr(sys, "argv", ["/venv/bin/shop", *argv])
    outcome = CliRunner().invoke(shop, argv, prog_name="anything")
    assert outcome.exit_code == 0, outcome.output
    assert actors_saved(store) == [Actor.system("cli:shop users create-admin")]
    # ``shop`` itself names its callback so.
    assert cli.app.registered_callback is not None
    assert cli.app.registered_callback.callback is act_as_command_line


def test_saved_outside_any_edge_the_actor_is_unknown(store: Store) -> None:
    def elsewhere() -> None:  # a fresh thread: no edge set anything
        store.save(open_cart(uuid4()))

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert actors_saved(store) == [UNKNOWN_ACTOR]


# --- stored, decoded, relayed -----------------------------------------------------------


def test_an_event_without_an_actor_reads_as_unknown(store: Store) -> None:
    store.save(open_cart(uuid4()))
    (notification,) = store.recorder.select_notifications(1, 10)
    event = store.mapper.to_domain_event(notification)
    del vars(event)[ACTOR]  # as every event stored before actors were recorded
    assert actor_of(event) == UNKNOWN_ACTOR
    assert getattr(event, ACTOR, None) is None


def test_the_aggregate_ignores_the_actor(store: Store) -> None:
    cart = open_cart(uuid4())
    with acting_as(Actor(ActorKind.USER, "u-1", "r-1", "192.0.2.1")):
        store.save(cart)
    assert store.repository.get(cart.id) == cart


def test_the_kafka_codec_carries_the_actor(store: Store) -> None:
    actor = Actor(ActorKind.WEBHOOK, "stripe", "r-9", "198.51.100.2")
    with acting_as(actor):
        store.save(open_cart(uuid4()))
    (notification,) = store.recorder.select_notifications(1, 10)
    _, value, _ = encode("ordering", notification, 0)
    relayed = decode(value)
    assert actor_of(relayed.domain_event(store)) == actor


@settings(max_examples=50, deadline=None)  # each example builds a store: a shared machine
@given(
    st.builds(
        Actor,
        st.sampled_from(ActorKind),
        st.none() | st.text(max_size=40),
        st.none() | st.text(max_size=40),
        st.none() | st.ip_addresses().map(str),
    )
)
def test_any_actor_round_trips_through_the_store(actor: Actor) -> None:
    store = Store(env=POPO)
    with acting_as(actor):
        store.save(open_cart(uuid4()))
    assert actors_saved(store) == [actor]


@pytest.mark.parametrize(
    "stored",
    [None, "user", {"kind": "robot"}, {"kind": 3}, {}, ["user"]],
)
def test_a_mapping_this_code_cannot_read_is_unknown(stored: object) -> None:
    class Event:
        pass

    event = Event()
    vars(event)[ACTOR] = stored
    assert actor_of(event) == UNKNOWN_ACTOR


@pytest.fixture(autouse=True)
def _no_leftover_actor() -> Iterator[None]:
    assert current_actor() == UNKNOWN_ACTOR
    yield
    assert current_actor() == UNKNOWN_ACTOR

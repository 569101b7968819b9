"""Erasure reaches every read model in Postgres (ADR 0024): once ``User.Erased`` is
applied, no row of any view holds the erased user's name, email, phone, postal or
client address, or the free text they wrote; a bystander's data stays; and a
rebuild from the log, which reads the sealed fields as erased and applies the logs
one after the other, gives exactly the rows the live views reached event by event,
with the erasure applied between the logs' events in another order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from psycopg.rows import dict_row

from commands.actors import acting_as
from domain.access import Principal
from domain.actors import Actor, ActorKind
from domain.carts import cart_id_for
from domain.money import Money
from domain.users import ERASED_TEXT, TokenPurpose, User, erased_email
from infra.entrypoints.rebuild import rebuild
from infra.postgres.aggregate_history import PostgresAggregateHistory
from infra.wiring.process import Container
from infra.wiring.views import VIEWS, make_view
from projections.audit.history import AuditedKind
from projections.engine import View, ViewProjection
from tests.integration.test_checkout_saga import ADMIN, make_saga, product, run
from tests.support.users_client import STRONG_PASSWORD

pytestmark = pytest.mark.integration

EMAIL = "grace.erasure-probe@example.com"
NAME = "Grace Erasureprobe"
PHONE = "+442079460123"
LINE1 = "42 Shredder Lane"
CITY = "Erasmusville"
CLIENT_IP = "203.0.113.77"
CANCEL_REASON = "changed my mind, ring me at the Shredder Lane flat"
RETURN_REASON = "too small for my daughter Ada Erasureprobe"
ADDRESS = {"name": NAME, "line1": LINE1, "city": CITY, "country": "GB"}
PERSONAL = [EMAIL, NAME, PHONE, LINE1, CITY, CLIENT_IP, CANCEL_REASON, RETURN_REASON]

BYSTANDER_EMAIL = "bystander.kept@example.com"
BYSTANDER_NAME = "Barbara Keptdata"
BYSTANDER_LINE1 = "1 Remaining Road"
BYSTANDER_ADDRESS = {
    "name": BYSTANDER_NAME,
    "line1": BYSTANDER_LINE1,
    "city": "Keep",
    "country": "FR",
}
BYSTANDER_IP = "192.0.2.200"

AFFECTED = ["user_profiles", "admin_users", "orders", "analytics_sales"]
"""The views that hold some of the person's data before the erasure."""


def _shopper(user_id: UUID, address: str = CLIENT_IP) -> Actor:
    return Actor(ActorKind.USER, str(user_id), "req-shopper", address)


def _admin() -> Actor:
    return Actor(ActorKind.USER, str(ADMIN.user_id), "req-admin", "198.51.100.1")


def _place(
    container: Container,
    customer: UUID,
    product_id: UUID,
    address: dict[str, str],
    client: str = CLIENT_IP,
    *,
    anonymous: bool = False,
) -> UUID:
    order_id = uuid4()
    actor = _shopper(customer, client)
    with acting_as(replace(actor, id=None) if anonymous else actor):
        container.ordering.carts.add(cart_id_for(customer), customer, product_id, 1)
        container.ordering.carts.checkout(customer, order_id, address, "pm_card_visa")
    return order_id


def _register(container: Container, email: str, name: str, client: str = CLIENT_IP) -> UUID:
    users = container.user_commands
    user_id = uuid4()
    with acting_as(Actor(ActorKind.USER, None, "req-register", client)):
        users.register(user_id, email, STRONG_PASSWORD, name)
        user: User = container.users_app.repository.get(user_id)
        token_id = user.pending_tokens[TokenPurpose.VERIFY_EMAIL.value]["token_id"]
        users.verify_email(
            container.users.tokens.link_token(TokenPurpose.VERIFY_EMAIL, user_id, token_id)
        )
        users.login(email, STRONG_PASSWORD)
    return user_id


def write_person(container: Container) -> tuple[UUID, UUID, UUID]:
    """The person and a bystander, each with a profile and orders (one cancelled by
    its shopper with a reason, one delivered and asked back); ids of the person, the
    person's delivered order, and the bystander."""
    person = _register(container, EMAIL, NAME)
    with acting_as(_shopper(person)):
        container.user_commands.update_profile(
            person,
            {
                "phone": PHONE,
                "addresses": [{"line1": LINE1, "city": CITY}],
                "notification_preferences": {"order_updates_email": True, "marketing_email": True},
            },
        )
    bystander = _register(container, BYSTANDER_EMAIL, BYSTANDER_NAME, BYSTANDER_IP)
    saga = make_saga(container, container.ordering.payments)
    try:
        product_id, _ = product(container, price="10.00", stock=10)
        # Placed by a request without a token: its address is sealed under the customer's key.
        cancelled = _place(container, person, product_id, ADDRESS, anonymous=True)
        delivered = _place(container, person, product_id, ADDRESS)
        _place(container, bystander, product_id, BYSTANDER_ADDRESS, BYSTANDER_IP)
        run(container, saga)
        shopper = Principal(person, uuid4(), frozenset({"customer"}))
        orders = container.ordering.orders
        with acting_as(_shopper(person)):
            orders.cancel_by_shopper(shopper, cancelled, CANCEL_REASON)
        with acting_as(_admin()):
            orders.ship(ADMIN, delivered, "DHL", "JD0042")
            orders.mark_delivered(ADMIN, delivered)
        with acting_as(_shopper(person)):
            orders.request_return(shopper, delivered, RETURN_REASON)
        run(container, saga)
    finally:
        saga.view.datastore.close()  # type: ignore[attr-defined]
    return person, delivered, bystander


def apply_new_events(container: Container, view: View, projection: Any, logs: list[str]) -> None:
    """What ``logs`` hold past the view's positions, event by event, as live."""
    apps = {app.name: app for app in container.applications()}
    for log in logs:
        app = apps[log]
        start = (view.max_tracking_id(log) or 0) + 1
        for notification in app.recorder.select_notifications(start=start, limit=100_000):
            projection.process_event(
                app.mapper.to_domain_event(notification), Tracking(log, notification.id)
            )


def contents(conninfo: str, view_class: type[View], generation: int) -> dict[str, list[Any]]:
    found = {}
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        for table in view_class.tables:
            rows = conn.execute(
                f"SELECT * FROM rm_{view_class.name}_g{generation}.{table}"
            ).fetchall()
            found[table] = sorted(rows, key=repr)
    return found


def personal_found(rows: dict[str, list[Any]], texts: list[str]) -> set[str]:
    dumped = json.dumps(rows, default=str)
    return {text for text in texts if text in dumped}


@pytest.fixture
def live_views(container: Container) -> Iterator[dict[str, tuple[View, ViewProjection[Any]]]]:
    """Every rebuildable Postgres view's served generation (1), fed as live."""
    views: dict[str, tuple[View, ViewProjection[Any]]] = {}
    for view_class, projection_class in VIEWS:
        view = make_view(container.conninfo, view_class, 1)
        views[view_class.name] = (view, projection_class(view))
    try:
        yield views
    finally:
        for view, _ in views.values():
            view.datastore.close()


def test_every_view_blanks_the_erased_user_and_a_rebuild_equals_it(
    container: Container, live_views: dict[str, tuple[View, ViewProjection[Any]]]
) -> None:
    person, delivered, _ = write_person(container)
    for view, projection in live_views.values():
        apply_new_events(container, view, projection, list(view.follows))
    before = {
        name: personal_found(contents(container.conninfo, type(view), 1), PERSONAL)
        for name, (view, _) in live_views.items()
    }
    assert {name for name, found in before.items() if found} == set(AFFECTED)
    assert before["orders"] >= {LINE1, CLIENT_IP, CANCEL_REASON, RETURN_REASON}
    assert before["user_profiles"] >= {EMAIL, NAME, PHONE, LINE1}

    container.user_commands.erase(person, by=ADMIN.user_id)
    # After the erasure the admin still acts on the person's order.
    with acting_as(_admin()):
        container.ordering.orders.refuse_return(ADMIN, delivered, "worn, not returnable")
        container.ordering.orders.refund(
            ADMIN, delivered, Money.of("1.00", "EUR"), "a goodwill gesture", "refund-1"
        )
    # The users log first now: the erasure lands before those steps, and in the
    # rebuild after them.
    for view, projection in live_views.values():
        apply_new_events(container, view, projection, list(reversed(view.follows)))
        # Redelivered: the tracked positions refuse it all.
        for log in view.follows:
            redelivered = (view.max_tracking_id(log) or 0) - 3
            app = {a.name: a for a in container.applications()}[log]
            for n in app.recorder.select_notifications(start=max(redelivered, 1), limit=10):
                projection.process_event(app.mapper.to_domain_event(n), Tracking(log, n.id))

    for view_class, _ in VIEWS:
        live = contents(container.conninfo, view_class, 1)
        assert personal_found(live, PERSONAL) == set(), view_class.name
        assert rebuild(container, view_class.name) == 2
        assert contents(container.conninfo, view_class, 2) == live, view_class.name

    everything = {
        name: contents(container.conninfo, type(view), 2) for name, (view, _) in live_views.items()
    }
    kept = [BYSTANDER_EMAIL, BYSTANDER_NAME, BYSTANDER_LINE1, BYSTANDER_IP]
    assert personal_found(everything["orders"], kept) == {
        BYSTANDER_NAME,
        BYSTANDER_LINE1,
        BYSTANDER_IP,
    }
    assert personal_found(everything["admin_users"], kept) == {BYSTANDER_EMAIL, BYSTANDER_NAME}
    # The admin's own words and address, and the order's amounts, stay.
    assert personal_found(everything["orders"], ["worn, not returnable", "198.51.100.1"]) == {
        "worn, not returnable",
        "198.51.100.1",
    }


def test_the_erased_rows_read_as_the_domain_says(
    container: Container, live_views: dict[str, tuple[View, ViewProjection[Any]]]
) -> None:
    person, _, _ = write_person(container)
    container.user_commands.erase(person, by=ADMIN.user_id)
    for view, projection in live_views.values():
        apply_new_events(container, view, projection, list(view.follows))
    with psycopg.connect(container.conninfo, row_factory=dict_row) as conn:
        profile = conn.execute(
            "SELECT * FROM rm_user_profiles_g1.user_profiles WHERE user_id = %s", (person,)
        ).fetchone()
        listed = conn.execute(
            "SELECT * FROM rm_admin_users_g1.admin_users WHERE user_id = %s", (person,)
        ).fetchone()
        access = conn.execute(
            "SELECT active FROM rm_user_access_g1.access_users WHERE user_id = %s", (person,)
        ).fetchone()
        orders = conn.execute(
            "SELECT shipping_address, cancellation_reason FROM rm_orders_g1.orders "
            "WHERE customer_id = %s ORDER BY placed_at",
            (person,),
        ).fetchall()
        reasons = conn.execute(
            "SELECT cancellation_reason FROM rm_analytics_sales_g1.analytics_orders "
            "WHERE customer_id = %s AND cancellation_reason IS NOT NULL",
            (person,),
        ).fetchall()
    assert profile is not None and listed is not None and access is not None
    assert (profile["email"], profile["name"], profile["phone"], profile["addresses"]) == (
        erased_email(person),
        ERASED_TEXT,
        None,
        [],
    )
    assert profile["notification_preferences"]["marketing_email"] is False  # the default
    assert (profile["active"], listed["active"], access["active"]) == (False, False, False)
    assert (listed["email"], listed["name"]) == (erased_email(person), ERASED_TEXT)
    assert [o["shipping_address"] for o in orders] == [{}, {}]
    assert [o["cancellation_reason"] for o in orders] == [ERASED_TEXT, None]
    assert [r["cancellation_reason"] for r in reasons] == [ERASED_TEXT]


def test_the_audit_history_of_an_erased_user_shows_the_erased_values(
    container: Container,
) -> None:
    """The audit view reads the events through the mapper: after the erasure the
    user's history and past states, and their order's history, show the erased
    values and their client address nowhere."""
    person, delivered, _ = write_person(container)
    container.user_commands.erase(person, by=ADMIN.user_id)
    history = PostgresAggregateHistory({app.name: app for app in container.applications()})
    entries = history.history(AuditedKind.USER, person, after=0, limit=100).entries
    assert [e.type for e in entries][-1] == "User.Erased"
    shown = json.dumps(
        [[e.data, e.actor.as_mapping()] for e in entries]
        + [history.state_at(AuditedKind.USER, person, version=e.version).state for e in entries]
        + [
            [e.data, e.actor.as_mapping()]
            for e in history.history(AuditedKind.ORDER, delivered, after=0, limit=100).entries
        ],
        default=str,
    )
    sealed = [text for text in PERSONAL if text not in (CANCEL_REASON, RETURN_REASON)]
    assert personal_found({"shown": [shown]}, sealed) == set()
    assert ERASED_TEXT in shown and erased_email(person) in shown
    # The shopper's free-text reasons are not sealed (their events name no customer
    # whose key would seal them): the log, and so the audit view, keeps them.
    assert personal_found({"shown": [shown]}, [RETURN_REASON]) == {RETURN_REASON}


def test_steps_decoded_before_the_erasure_and_applied_after_it_are_written_blanked(
    container: Container, live_views: dict[str, tuple[View, ViewProjection[Any]]]
) -> None:
    """A view that meets the erasure first and the person's earlier events after it
    (another log's follower behind, or a process that read them while it still
    had the key cached): those events hold the data in clear, and the view writes
    them blanked."""
    write_person(container)
    apps = {app.name: app for app in container.applications()}
    decoded = {
        log: [
            (app.mapper.to_domain_event(n), Tracking(log, n.id))
            for n in app.recorder.select_notifications(start=1, limit=100_000)
        ]
        for log, app in apps.items()
    }
    assert any(
        getattr(event, "shipping_address", {}).get("line1") == LINE1
        for event, _ in decoded["ordering"]
    )
    person = next(e.originator_id for e, _ in decoded["users"] if getattr(e, "email", "") == EMAIL)
    container.user_commands.erase(person, by=ADMIN.user_id)
    users = apps["users"]
    start = decoded["users"][-1][1].notification_id + 1
    decoded["users"] += [
        (users.mapper.to_domain_event(n), Tracking("users", n.id))
        for n in users.recorder.select_notifications(start=start, limit=100)
    ]
    for view, projection in live_views.values():
        for log in sorted(view.follows, key=lambda log: log != "users"):  # users first
            for event, tracking in decoded[log]:
                projection.process_event(event, tracking)
    for view_class, _ in VIEWS:
        live = contents(container.conninfo, view_class, 1)
        assert personal_found(live, PERSONAL) == set(), view_class.name
        assert rebuild(container, view_class.name) == 2
        assert contents(container.conninfo, view_class, 2) == live, view_class.name

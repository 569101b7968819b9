"""Read models of orders and payments, in Postgres.

- ``orders`` follows the ordering log: one row per order (the shopper's history and
  the admins' list, with the columns their filters and keyset sorts use), its
  lines, and a status timeline (one row per transition, as the aggregate notes it,
  and who acted: ``order_timeline_actors``).
  While an order awaits the shopper's authentication, ``authentication`` holds what
  the storefront needs for it (a client secret, a challenge URL); the decision
  clears it, so the read model keeps no client secret past its use.
- ``payments`` follows the payments log: one row per payment (amounts, status, the
  gateway's reference) and one row per gateway fact (authorization, decline,
  capture, void, refund, each with the gateway's reference): the payment history.
  Queries join it to ``orders`` for the customer.

Erasure (ADR 0024): ``orders`` follows the users log too, for ``User.Erased``, on
which it blanks what it derived from the customer's personal data to what a replay
gives once the customer's key is gone: the shipping address (``{}``, as
``Order.Placed`` then reads) and the client address of every step the user acted in
(sealed under the actor's key, or the customer's for an anonymous placement); and
the free text the shopper wrote (a cancellation's or a return request's reason, kept
in ``order_shopper_notes``), which is not sealed but may name anyone, reads as
``ERASED_TEXT``. Erasures are remembered (``orders_erased_users``) and a step applied
after one is written blanked already, so the two logs may be applied in either order
(live, or a rebuild one log after the other) and give the same rows; the view is
``serialised`` so that an erasure and an order step never commit past each other.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL
from psycopg.types.json import Jsonb

from domain.actors import Actor, ActorKind, actor_of
from domain.money import Money
from domain.order_status import OrderStatus, refunded_status
from domain.orders import AUTHENTICATION_NOTE, FREE_ORDER_NOTE, Order
from domain.payments import Payment, PaymentStatus
from domain.personal_data import EVENT_FIELDS
from domain.users import ERASED_TEXT, User
from projections.engine import View, ViewProjection

S = OrderStatus


def erased_shipping_address(customer_id: UUID) -> Any:
    """What ``Order.Placed``'s shipping address reads as once its customer is erased."""
    return EVENT_FIELDS[Order.Placed].erased["shipping_address"](customer_id)


class OrdersView(View):
    name = "orders"
    follows = ("ordering", "users")
    serialised = True  # an erasure and an order's step take turns (module docstring)
    tables = {
        "orders": """
            order_id uuid PRIMARY KEY,
            customer_id uuid NOT NULL,
            status text NOT NULL,
            currency text NOT NULL,
            total numeric NOT NULL,
            captured numeric NOT NULL,
            refunded numeric NOT NULL,
            lines jsonb NOT NULL,
            product_ids uuid[] NOT NULL,
            shipping_address jsonb NOT NULL,
            payment_reference text,
            authentication jsonb,
            rejection_reason text,
            cancellation_reason text,
            carrier text,
            tracking_number text,
            placed_at timestamptz NOT NULL,
            delivered_at timestamptz,
            updated_at timestamptz NOT NULL
        """,
        "order_timeline": """
            order_id uuid NOT NULL,
            version integer NOT NULL,
            status text NOT NULL,
            at timestamptz NOT NULL,
            note text NOT NULL,
            PRIMARY KEY (order_id, version)
        """,
        # Who acted at each step (``domain.actors``). A table of its own rather than a
        # column: generations made before it get it as a new table (an order's rows
        # from before then have none, as their events name no actor).
        "order_timeline_actors": """
            order_id uuid NOT NULL,
            version integer NOT NULL,
            actor jsonb NOT NULL,
            PRIMARY KEY (order_id, version)
        """,
        # The timeline steps whose note the shopper wrote (erased with the shopper).
        "order_shopper_notes": """
            order_id uuid NOT NULL,
            version integer NOT NULL,
            PRIMARY KEY (order_id, version)
        """,
        "orders_erased_users": """
            user_id uuid PRIMARY KEY
        """,
    }
    indexes = [
        "CREATE INDEX IF NOT EXISTS orders_customer ON {schema}.orders "
        "(customer_id, placed_at DESC, order_id DESC)",
        "CREATE INDEX IF NOT EXISTS orders_placed ON {schema}.orders "
        "(placed_at DESC, order_id DESC)",
        "CREATE INDEX IF NOT EXISTS orders_status ON {schema}.orders "
        "(status, placed_at DESC, order_id DESC)",
        "CREATE INDEX IF NOT EXISTS orders_products ON {schema}.orders USING gin (product_ids)",
        # An erasure finds the steps its user acted in (ADR 0024).
        "CREATE INDEX IF NOT EXISTS order_timeline_actors_id ON {schema}.order_timeline_actors "
        "((actor ->> 'id'))",
    ]

    # --- erasure (SQL behind named methods, called by the projection) -------------

    @staticmethod
    def erase_user(cursor: Cursor[DictRow], user_id: UUID) -> None:
        """Blank what the rows hold of ``user_id``'s personal data; again, nothing."""
        cursor.execute(
            "INSERT INTO orders_erased_users VALUES (%s) ON CONFLICT DO NOTHING", (user_id,)
        )
        cursor.execute(
            "UPDATE orders SET shipping_address = %s WHERE customer_id = %s",
            (Jsonb(erased_shipping_address(user_id)), user_id),
        )
        cursor.execute(
            "UPDATE orders o SET cancellation_reason = %s FROM order_shopper_notes n "
            "JOIN order_timeline t USING (order_id, version) "
            "WHERE o.customer_id = %s AND n.order_id = o.order_id AND t.status = %s",
            (ERASED_TEXT, user_id, S.CANCELLED.value),
        )
        cursor.execute(
            "UPDATE order_timeline t SET note = %s FROM order_shopper_notes n, orders o "
            "WHERE (t.order_id, t.version) = (n.order_id, n.version) "
            "AND o.order_id = t.order_id AND o.customer_id = %s",
            (ERASED_TEXT, user_id),
        )
        # The client address is sealed under the acting user's key; an anonymous
        # placement's under its customer's. Two statements, each on an index.
        dropped = Jsonb({"client_address": None})
        cursor.execute(
            "UPDATE order_timeline_actors SET actor = actor || %s "
            "WHERE actor ->> 'id' = %s AND actor ->> 'kind' = %s "
            "AND actor ->> 'client_address' IS NOT NULL",
            (dropped, str(user_id), ActorKind.USER.value),
        )
        cursor.execute(
            "UPDATE order_timeline_actors a SET actor = actor || %s FROM orders o "
            "WHERE o.customer_id = %s AND a.order_id = o.order_id AND a.version = 1 "
            "AND NOT (actor ->> 'kind' = %s AND actor ->> 'id' IS NOT NULL) "
            "AND actor ->> 'client_address' IS NOT NULL",
            (dropped, user_id, ActorKind.USER.value),
        )

    @staticmethod
    def is_erased(cursor: Cursor[DictRow], user_id: UUID | None) -> bool:
        if user_id is None:
            return False
        cursor.execute("SELECT 1 FROM orders_erased_users WHERE user_id = %s", (user_id,))
        return cursor.fetchone() is not None

    @staticmethod
    def customer_erased(cursor: Cursor[DictRow], order_id: UUID) -> bool:
        cursor.execute(
            "SELECT 1 FROM orders o JOIN orders_erased_users e ON e.user_id = o.customer_id "
            "WHERE o.order_id = %s",
            (order_id,),
        )
        return cursor.fetchone() is not None


class OrdersProjection(ViewProjection[OrdersView]):
    name = "orders"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        if isinstance(event, User.Erased):
            self.view.erase_user(cursor, event.originator_id)
            return
        if not isinstance(event, Order.Event):
            return
        match event:
            case Order.Placed():
                address = (
                    erased_shipping_address(event.customer_id)
                    if self.view.is_erased(cursor, event.customer_id)
                    else event.shipping_address
                )
                cursor.execute(
                    "INSERT INTO orders (order_id, customer_id, status, currency, total, "
                    "captured, refunded, lines, product_ids, shipping_address, placed_at, "
                    "updated_at) VALUES (%s, %s, 'placed', %s, %s, 0, 0, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (order_id) DO NOTHING",
                    (
                        event.originator_id,
                        event.customer_id,
                        event.total["currency"],
                        Decimal(event.total["amount"]),
                        Jsonb([{**e, "product_id": str(e["product_id"])} for e in event.lines]),
                        sorted({e["product_id"] for e in event.lines}),
                        Jsonb(address),
                        event.at,
                        event.at,
                    ),
                )
                self._note(cursor, event, S.PLACED, f"order placed: {Money.from_dict(event.total)}")
            case Order.Confirmed():
                self._move(
                    cursor,
                    event,
                    S.CONFIRMED,
                    "payment authorized, stock reserved",
                    "payment_reference = %s, authentication = NULL",
                    event.payment_reference,
                )
            case Order.ConfirmedWithoutPayment():
                self._move(cursor, event, S.CONFIRMED, FREE_ORDER_NOTE)
            case Order.AuthenticationRequested():
                self._move(
                    cursor,
                    event,
                    S.AWAITING_AUTHENTICATION,
                    AUTHENTICATION_NOTE,
                    "authentication = %s",
                    Jsonb(
                        {
                            "payment_reference": event.payment_reference,
                            "client_secret": event.client_secret,
                            "approval_url": event.approval_url,
                        }
                    ),
                )
            case Order.Rejected():
                self._move(
                    cursor,
                    event,
                    S.REJECTED,
                    event.reason,
                    "rejection_reason = %s, authentication = NULL",
                    event.reason,
                )
            case Order.Shipped():
                self._move(
                    cursor,
                    event,
                    S.SHIPPED,
                    f"shipped with {event.carrier}, tracking number {event.tracking_number}",
                    "carrier = %s, tracking_number = %s",
                    event.carrier,
                    event.tracking_number,
                )
            case Order.Delivered():
                self._move(cursor, event, S.DELIVERED, "delivered", "delivered_at = %s", event.at)
            case Order.Cancelled():
                reason = self._shoppers_text(cursor, event) if not event.by_admin else event.reason
                self._move(
                    cursor,
                    event,
                    S.CANCELLED,
                    reason,
                    "cancellation_reason = %s, authentication = NULL",
                    reason,
                )
            case Order.ReturnRequested():
                self._move(cursor, event, S.RETURN_REQUESTED, self._shoppers_text(cursor, event))
            case Order.ReturnApproved():
                self._move(cursor, event, S.RETURN_APPROVED, "return approved")
            case Order.ReturnRefused():
                self._move(cursor, event, S.RETURN_REFUSED, event.reason)
            case Order.Returned():
                self._move(cursor, event, S.RETURNED, "returned goods received")
            case Order.PaymentCaptured():
                self._set(
                    cursor, event, "captured = captured + %s", Decimal(event.amount["amount"])
                )
            case Order.Refunded():
                amount = Money.from_dict(event.amount)
                kind = "refunded" if event.fully else "partially refunded"
                self._set(cursor, event, "refunded = refunded + %s", amount.amount)
                # A full refund ends a delivered or returned order; a cancelled one stays.
                cursor.execute(
                    "SELECT status FROM orders WHERE order_id = %s", (event.originator_id,)
                )
                row = cursor.fetchone()
                current = S(row["status"]) if row else S.REFUNDED
                status = refunded_status(current, event.fully)
                self._move(cursor, event, status, f"{kind} {amount}: {event.reason}")

    def _shoppers_text(self, cursor: Cursor[DictRow], event: Any) -> str:
        """The reason the shopper wrote: noted as theirs, and erased if they are."""
        cursor.execute(
            "INSERT INTO order_shopper_notes VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (event.originator_id, event.originator_version),
        )
        erased = self.view.customer_erased(cursor, event.originator_id)
        return ERASED_TEXT if erased else str(event.reason)

    def _move(
        self,
        cursor: Cursor[DictRow],
        event: Any,
        status: OrderStatus,
        note: str,
        assignments: str = "",
        *values: Any,
    ) -> None:
        extra = f", {assignments}" if assignments else ""
        self._set(cursor, event, "status = %s" + extra, status.value, *values)
        self._note(cursor, event, status, note)

    @staticmethod
    def _set(cursor: Cursor[DictRow], event: Any, assignments: str, *values: Any) -> None:
        cursor.execute(
            SQL("UPDATE orders SET {0}, updated_at = %s WHERE order_id = %s").format(
                SQL(assignments)  # our own constant text, never input
            ),
            (*values, event.at, event.originator_id),
        )

    def _note(self, cursor: Cursor[DictRow], event: Any, status: OrderStatus, note: str) -> None:
        cursor.execute(
            "INSERT INTO order_timeline VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (event.originator_id, event.originator_version, status.value, event.at, note),
        )
        actor = actor_of(event)
        if actor.client_address is not None and self._address_erased(cursor, event, actor):
            actor = replace(actor, client_address=None)
        cursor.execute(
            "INSERT INTO order_timeline_actors VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (event.originator_id, event.originator_version, Jsonb(actor.as_mapping())),
        )

    def _address_erased(self, cursor: Cursor[DictRow], event: Any, actor: Actor) -> bool:
        """Whether the one whose key seals the actor's client address is erased: the
        acting user, or for an anonymous placement its customer (as the event
        store's mapper chooses)."""
        owner: UUID | None = None
        if actor.kind is ActorKind.USER and actor.id is not None:
            with suppress(ValueError):
                owner = UUID(actor.id)
        if owner is None and isinstance(event, Order.Placed):
            owner = event.customer_id
        return self.view.is_erased(cursor, owner)


class PaymentsView(View):
    name = "payments"
    follows = ("payments",)
    tables = {
        "payments": """
            payment_id uuid PRIMARY KEY,
            order_id uuid NOT NULL UNIQUE,
            gateway text NOT NULL,
            capture_mode text NOT NULL,
            status text NOT NULL,
            currency text NOT NULL,
            amount numeric NOT NULL,
            authorized numeric NOT NULL,
            captured numeric NOT NULL,
            refunded numeric NOT NULL,
            reference text,
            failure_code text,
            failure_reason text,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        """,
        "payment_history": """
            payment_id uuid NOT NULL,
            version integer NOT NULL,
            kind text NOT NULL,
            amount numeric,
            reference text,
            gateway_event_id text,
            note text,
            at timestamptz NOT NULL,
            PRIMARY KEY (payment_id, version)
        """,
    }
    indexes = [
        "CREATE INDEX IF NOT EXISTS payments_newest ON {schema}.payments "
        "(created_at DESC, payment_id DESC)",
    ]


class PaymentsProjection(ViewProjection[PaymentsView]):
    name = "payments"

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        if not isinstance(event, Payment.Event):
            return
        match event:
            case Payment.Requested():
                cursor.execute(
                    "INSERT INTO payments (payment_id, order_id, gateway, capture_mode, status, "
                    "currency, amount, authorized, captured, refunded, created_at, updated_at) "
                    "VALUES (%s, %s, %s, %s, 'requested', %s, %s, 0, 0, 0, %s, %s) "
                    "ON CONFLICT (payment_id) DO NOTHING",
                    (
                        event.originator_id,
                        event.order_id,
                        event.gateway,
                        event.capture_mode,
                        event.amount["currency"],
                        Decimal(event.amount["amount"]),
                        event.timestamp,
                        event.timestamp,
                    ),
                )
                self._history(cursor, event, "requested", event.amount["amount"], None)
            case Payment.ActionRequired():
                self._set(
                    cursor, event, PaymentStatus.ACTION_REQUIRED, "reference = %s", event.reference
                )
                self._history(cursor, event, "action_required", None, event.reference)
            case Payment.Authorized():
                self._set(
                    cursor,
                    event,
                    PaymentStatus.AUTHORIZED,
                    "reference = %s, authorized = %s",
                    event.reference,
                    Decimal(event.amount["amount"]),
                )
                self._history(cursor, event, "authorized", event.amount["amount"], event.reference)
            case Payment.AuthorizationFailed():
                self._set(
                    cursor,
                    event,
                    PaymentStatus.FAILED,
                    "reference = coalesce(%s, reference), failure_code = %s, failure_reason = %s",
                    event.reference,
                    event.code,
                    event.reason,
                )
                self._history(cursor, event, "declined", None, event.reference, event.reason)
            case Payment.Captured():
                self._set(
                    cursor,
                    event,
                    PaymentStatus.CAPTURED,
                    "captured = %s",
                    Decimal(event.amount["amount"]),
                )
                self._history(cursor, event, "captured", event.amount["amount"], event.reference)
            case Payment.Voided():
                self._set(cursor, event, PaymentStatus.VOIDED, "")
                self._history(cursor, event, "voided", None, event.reference)
            case Payment.Refunded():
                cursor.execute(
                    "UPDATE payments SET refunded = refunded + %s, updated_at = %s, "
                    "status = CASE WHEN refunded + %s >= captured THEN 'refunded' ELSE status END "
                    "WHERE payment_id = %s",
                    (
                        Decimal(event.amount["amount"]),
                        event.timestamp,
                        Decimal(event.amount["amount"]),
                        event.originator_id,
                    ),
                )
                self._history(
                    cursor, event, "refunded", event.amount["amount"], event.refund_reference
                )

    @staticmethod
    def _set(
        cursor: Cursor[DictRow], event: Any, status: PaymentStatus, assignments: str, *values: Any
    ) -> None:
        extra = f", {assignments}" if assignments else ""
        cursor.execute(
            SQL("UPDATE payments SET status = %s{0}, updated_at = %s WHERE payment_id = %s").format(
                SQL(extra)  # our own constant text, never input
            ),
            (status.value, *values, event.timestamp, event.originator_id),
        )

    @staticmethod
    def _history(
        cursor: Cursor[DictRow],
        event: Any,
        kind: str,
        amount: str | None,
        reference: str | None,
        note: str | None = None,
    ) -> None:
        cursor.execute(
            "INSERT INTO payment_history VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (
                event.originator_id,
                event.originator_version,
                kind,
                None if amount is None else Decimal(amount),
                reference,
                getattr(event, "gateway_event_id", None),
                note,
                event.timestamp,
            ),
        )


ORDERING_VIEWS: list[tuple[type[View], type[ViewProjection[Any]]]] = [
    (OrdersView, OrdersProjection),
    (PaymentsView, PaymentsProjection),
]

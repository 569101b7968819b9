"""Our own record of every gateway call, in Postgres: what makes idempotency keys and
money limits hold whatever the gateway does.

Why our own record, when Stripe and PayPal honour idempotency keys and refuse a
refund above the capture? Because the fakes we test against do not (localstripe
ignores keys and refunds any amount), the sandbox gateway has nothing else, and two
workers handling one redelivered saga step must not both move money even with a
gateway that would let them. So each adapter runs its remote call inside
``PaymentLedger``:

- A call claims ``(gateway, operation, idempotency key)`` in a transaction. A
  concurrent call with the same key waits on the claim (a unique index) and then
  answers the stored outcome; the same key with another request is refused
  (``IdempotencyKeyReused``). A call that fails (gateway down, a limit refused)
  rolls back: nothing is recorded and a retry with the same key runs again, which
  the real gateways dedupe by the key we pass them.
- ``settle`` follows an authorization that awaited the shopper's authentication
  (3-D Secure) to its end: it locks the row, asks the gateway, and records the
  authorization (or failure) it reports, so capture and void see it.
- Capture, void and refund lock the payment's row (``FOR UPDATE``) and check the
  limits (``domain.payments``: capture <= authorized once, refunds <= captured)
  before the remote call, then record the new amounts with the outcome, in the same
  transaction. Calls on one payment are serialised; calls on different payments
  are not.

The transaction stays open during the remote call: a connection per in-flight call
(a pool of 10 covers far more than one process's checkouts, each call taking about
the gateway's latency). Tables: ``DDL``, created by ``shop migrate``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from psycopg import Connection
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from commands.errors import IdempotencyKeyReused
from commands.idempotency import request_fingerprint
from commands.ordering.payment_gateway import (
    ActionRequired,
    AuthorizationOutcome,
    Authorized,
    Captured,
    Declined,
    GatewayOutcome,
    Refunded,
    UnknownGatewayReference,
    Voided,
    gateway_event_id,
)
from domain.money import Money
from domain.payments import (
    PaymentTransitionNotAllowed,
    check_capture,
    check_refund,
    positive,
)

DDL = """
CREATE TABLE IF NOT EXISTS public.payment_gateway_payments (
    gateway text NOT NULL,
    reference text NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    authorized numeric NOT NULL,
    captured numeric NOT NULL DEFAULT 0,
    refunded numeric NOT NULL DEFAULT 0,
    capture_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway, reference)
);
CREATE TABLE IF NOT EXISTS public.payment_gateway_requests (
    gateway text NOT NULL,
    operation text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    outcome jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway, operation, key)
);
-- The gateway's id of an authorization made after the shopper's approval, where it
-- is not the payment's reference (PayPal: the order's id stays the reference).
ALTER TABLE public.payment_gateway_payments ADD COLUMN IF NOT EXISTS authorization_id text;
"""

ACTION_REQUIRED = "action_required"
AUTHORIZED = "authorized"
FAILED = "failed"
CAPTURED = "captured"
VOIDED = "voided"

OutcomeT = TypeVar("OutcomeT", bound=GatewayOutcome)


@dataclass(frozen=True)
class LedgerEntry:
    """What we know of one payment at a gateway."""

    reference: str
    status: str
    authorized: Money
    captured: Money
    refunded: Money
    capture_id: str | None
    authorization_id: str | None = None


class PaymentLedger:
    def __init__(self, pool: ConnectionPool[Any], gateway: str) -> None:
        self._pool = pool
        self.gateway = gateway

    # --- the four operations --------------------------------------------------------

    def authorize(
        self,
        key: str,
        request: Mapping[str, Any],
        amount: Money,
        call: Callable[[], AuthorizationOutcome],
    ) -> AuthorizationOutcome:
        """Run ``call`` once per key; record the payment it authorized (or that
        awaits the shopper's authentication)."""

        def act(conn: Connection[Any]) -> AuthorizationOutcome:
            outcome = call()
            if isinstance(outcome, Declined):
                return outcome  # no payment to keep: nothing can follow a decline
            captured = outcome.captured if isinstance(outcome, Authorized) else None
            if isinstance(outcome, ActionRequired):
                status = ACTION_REQUIRED
            else:
                status = AUTHORIZED if captured is None else CAPTURED
            conn.execute(
                "INSERT INTO public.payment_gateway_payments "
                "(gateway, reference, currency, status, authorized, captured, capture_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    self.gateway,
                    outcome.reference,
                    amount.currency,
                    status,
                    amount.amount,
                    0 if captured is None else captured.amount.amount,
                    None if captured is None else captured.capture_id,
                ),
            )
            return outcome

        return self._once("authorize", key, dict(request), act)

    def capture(
        self, reference: str, amount: Money, key: str, call: Callable[[LedgerEntry], Captured]
    ) -> Captured:
        def act(conn: Connection[Any]) -> Captured:
            entry = self._locked(conn, reference)
            self._require(entry, {AUTHORIZED}, "capture")
            check_capture(positive(amount, entry.authorized.currency, "capture"), entry.authorized)
            outcome = call(entry)
            conn.execute(
                "UPDATE public.payment_gateway_payments SET status = %s, captured = %s, "
                "capture_id = %s WHERE gateway = %s AND reference = %s",
                (CAPTURED, amount.amount, outcome.capture_id, self.gateway, reference),
            )
            return outcome

        return self._once("capture", key, {"reference": reference, **amount.to_dict()}, act)

    def void(self, reference: str, key: str, call: Callable[[LedgerEntry], Voided]) -> Voided:
        def act(conn: Connection[Any]) -> Voided:
            entry = self._locked(conn, reference)
            if entry.status == VOIDED:  # voided before, under another key
                return Voided(reference, gateway_event_id(self.gateway, "voided", reference))
            self._require(entry, {AUTHORIZED, ACTION_REQUIRED}, "void")
            outcome = call(entry)
            conn.execute(
                "UPDATE public.payment_gateway_payments SET status = %s "
                "WHERE gateway = %s AND reference = %s",
                (VOIDED, self.gateway, reference),
            )
            return outcome

        return self._once("void", key, {"reference": reference}, act)

    def refund(
        self, reference: str, amount: Money, key: str, call: Callable[[LedgerEntry], Refunded]
    ) -> Refunded:
        def act(conn: Connection[Any]) -> Refunded:
            entry = self._locked(conn, reference)
            self._require(entry, {CAPTURED}, "refund")
            check_refund(
                positive(amount, entry.captured.currency, "refund"), entry.captured, entry.refunded
            )
            outcome = call(entry)
            conn.execute(
                "UPDATE public.payment_gateway_payments SET refunded = refunded + %s "
                "WHERE gateway = %s AND reference = %s",
                (amount.amount, self.gateway, reference),
            )
            return outcome

        return self._once("refund", key, {"reference": reference, **amount.to_dict()}, act)

    def settle(
        self, reference: str, call: Callable[[LedgerEntry], AuthorizationOutcome]
    ) -> AuthorizationOutcome:
        """Where the payment's authorization stands (``call`` asks the gateway); an
        authorization awaiting the shopper that the gateway now reports authorized or
        failed is recorded so. No idempotency key: it moves no money."""
        with self._pool.connection() as conn, conn.transaction():
            entry = self._locked(conn, reference)
            outcome = call(entry)
            if entry.status != ACTION_REQUIRED or isinstance(outcome, ActionRequired):
                return outcome
            if isinstance(outcome, Declined):
                conn.execute(
                    "UPDATE public.payment_gateway_payments SET status = %s "
                    "WHERE gateway = %s AND reference = %s",
                    (FAILED, self.gateway, reference),
                )
                return outcome
            captured = outcome.captured
            conn.execute(
                "UPDATE public.payment_gateway_payments SET status = %s, authorized = %s, "
                "captured = %s, capture_id = %s, authorization_id = %s "
                "WHERE gateway = %s AND reference = %s",
                (
                    AUTHORIZED if captured is None else CAPTURED,
                    outcome.amount.amount,
                    0 if captured is None else captured.amount.amount,
                    None if captured is None else captured.capture_id,
                    outcome.authorization_id,
                    self.gateway,
                    reference,
                ),
            )
            return outcome

    def entry(self, reference: str) -> LedgerEntry | None:
        with self._pool.connection() as conn:
            row = conn.execute(_SELECT, (self.gateway, reference)).fetchone()
        return None if row is None else _entry(row)

    # --- helpers ----------------------------------------------------------------------

    def _once(
        self,
        operation: str,
        key: str,
        request: dict[str, Any],
        act: Callable[[Connection[Any]], OutcomeT],
    ) -> OutcomeT:
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise ValueError("an idempotency key is 1-255 characters")
        fingerprint = request_fingerprint(request)
        with self._pool.connection() as conn, conn.transaction():
            claimed = conn.execute(
                "INSERT INTO public.payment_gateway_requests "
                "(gateway, operation, key, fingerprint) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1",
                (self.gateway, operation, key, fingerprint),
            ).fetchone()
            if claimed is None:
                row = conn.execute(
                    "SELECT fingerprint, outcome FROM public.payment_gateway_requests "
                    "WHERE gateway = %s AND operation = %s AND key = %s",
                    (self.gateway, operation, key),
                ).fetchone()
                assert row is not None and row[1] is not None  # claims commit with outcomes
                if row[0] != fingerprint:
                    raise IdempotencyKeyReused(
                        f"this idempotency key was used for another {operation} request"
                    )
                replayed: OutcomeT = decode(row[1])  # type: ignore[assignment]
                return replayed
            outcome = act(conn)
            conn.execute(
                "UPDATE public.payment_gateway_requests SET outcome = %s "
                "WHERE gateway = %s AND operation = %s AND key = %s",
                (Jsonb(encode(outcome)), self.gateway, operation, key),
            )
            return outcome

    def _locked(self, conn: Connection[Any], reference: str) -> LedgerEntry:
        row = conn.execute(_SELECT + " FOR UPDATE", (self.gateway, reference)).fetchone()
        if row is None:
            raise UnknownGatewayReference(f"no {self.gateway} payment {reference[:80]!r}")
        return _entry(row)

    @staticmethod
    def _require(entry: LedgerEntry, allowed: set[str], action: str) -> None:
        if entry.status not in allowed:
            raise PaymentTransitionNotAllowed(
                f"cannot {action} a payment that is {entry.status.replace('_', ' ')}"
            )


_SELECT = (
    "SELECT reference, status, currency, authorized, captured, refunded, capture_id, "
    "authorization_id FROM public.payment_gateway_payments WHERE gateway = %s AND reference = %s"
)


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    reference, status, currency, authorized, captured, refunded, capture_id, auth_id = row
    return LedgerEntry(
        reference=reference,
        status=status,
        authorized=Money(Decimal(authorized), currency),
        captured=Money(Decimal(captured), currency),
        refunded=Money(Decimal(refunded), currency),
        capture_id=capture_id,
        authorization_id=auth_id,
    )


# --- outcomes as JSON -------------------------------------------------------------------


def encode(outcome: GatewayOutcome) -> dict[str, Any]:
    match outcome:
        case Authorized():
            return {
                "type": "authorized",
                "reference": outcome.reference,
                "amount": outcome.amount.to_dict(),
                "event_id": outcome.event_id,
                "captured": None if outcome.captured is None else encode(outcome.captured),
                "authorization_id": outcome.authorization_id,
            }
        case Declined():
            return {"type": "declined", **vars(outcome)}
        case ActionRequired():
            return {"type": "action_required", **vars(outcome)}
        case Captured() | Refunded():
            return {"type": type(outcome).__name__.lower(), **vars(outcome)} | {
                "amount": outcome.amount.to_dict()
            }
        case Voided():
            return {"type": "voided", **vars(outcome)}


def decode(data: Mapping[str, Any]) -> GatewayOutcome:
    fields = {k: v for k, v in data.items() if k != "type"}
    match data["type"]:
        case "authorized":
            captured = fields.pop("captured")
            decoded = decode(captured) if captured is not None else None
            assert decoded is None or isinstance(decoded, Captured)
            return Authorized(
                **(fields | {"amount": Money.from_dict(fields["amount"]), "captured": decoded})
            )
        case "declined":
            return Declined(**fields)
        case "action_required":
            return ActionRequired(**fields)
        case "captured":
            return Captured(**(fields | {"amount": Money.from_dict(fields["amount"])}))
        case "refunded":
            return Refunded(**(fields | {"amount": Money.from_dict(fields["amount"])}))
        case "voided":
            return Voided(**fields)
    raise ValueError(f"not a stored gateway outcome: {data['type']!r}")

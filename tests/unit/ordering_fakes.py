"""The ordering context on the in-memory (POPO) event store, with fakes for its ports.

Real: the ordering, payments, catalog and inventory Applications (POPO), their command
handlers, the checkout saga and the sweep of abandoned authentications. Fake: the
payment gateway (``FakeGateway``: deterministic, in memory, keeping the gateway
contract that ``tests/integration/test_payment_gateways.py`` holds every adapter to),
the payment methods store (``MemoryPaymentMethods``) and the clock (``FakeClock``, the
users' tests' own). The catalog serves as the carts' ``Products`` and the inventory's
``SkuOwners``, as in ``infra.wiring.process``.

``MemoryShop`` has the attributes of ``infra.wiring.process.Container`` that the Postgres
saga tests' helpers use (``tests/integration/test_checkout_saga.py``: ``product``,
``checkout``, ``run``, ``stock``, ``order``, ``payment``), so its methods are those
helpers, run on this shop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID, uuid4

from eventsourcing.popo import POPOTrackingRecorder

from commands.catalog.inventory import InventoryApplication, InventoryCommands
from commands.catalog.products import CatalogApplication, CatalogCommands
from commands.errors import IdempotencyKeyReused
from commands.idempotency import request_fingerprint
from commands.ordering.application import OrderingApplication
from commands.ordering.authentication_timeouts import AbandonedAuthentications
from commands.ordering.carts import CartCommands
from commands.ordering.checkout_saga import CheckoutSaga
from commands.ordering.orders import OrderCommands
from commands.ordering.payment_gateway import (
    ActionRequired,
    AuthorizationOutcome,
    Authorized,
    Captured,
    CaptureMode,
    Declined,
    GatewayOutcome,
    GatewayRefused,
    GatewayUnavailable,
    Refunded,
    UnknownGatewayReference,
    Voided,
    gateway_event_id,
)
from commands.ordering.payments import PaymentCommands, PaymentsApplication
from domain.access import Principal
from domain.inventory import StockItem
from domain.money import Money
from domain.orders import Order
from domain.payments import (
    PaymentTransitionNotAllowed,
    check_capture,
    check_refund,
    positive,
)
from tests.integration import test_checkout_saga as saga_helpers
from tests.integration.test_checkout_saga import Listed
from tests.unit.test_user_commands import FakeClock

if TYPE_CHECKING:
    from domain.payments import Payment
    from infra.wiring.process import Container

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}

# --- the payment gateway ----------------------------------------------------------------

NAME = "fake"
OK = "tok_ok"
DECLINED = "tok_declined"
INSUFFICIENT_FUNDS = "tok_insufficient_funds"
THREE_D_SECURE = "tok_3ds"
UNAVAILABLE = "tok_unavailable"
"""Authorizing with it raises ``GatewayUnavailable`` (every time)."""
REFUSED = "tok_refused"
"""Authorizing with it raises ``GatewayRefused`` (every time)."""
DECLINES = {
    DECLINED: ("card_declined", "Your card was declined."),
    INSUFFICIENT_FUNDS: ("insufficient_funds", "Your card has insufficient funds."),
}
AUTHENTICATION_FAILED = ("authentication_failed", "The shopper did not authenticate.")

ACTION_REQUIRED, AUTHORIZED, FAILED, CAPTURED, VOIDED = (
    "action_required",
    "authorized",
    "failed",
    "captured",
    "voided",
)

OutcomeT = TypeVar("OutcomeT", bound=GatewayOutcome)


@dataclass
class GatewayPayment:
    """What the fake gateway holds of one payment."""

    reference: str
    status: str
    authorized: Money
    captured: Money
    refunded: Money


class FakeGateway:
    """A deterministic payment gateway in memory.

    The token decides authorization: ``OK`` authorizes, ``DECLINED`` /
    ``INSUFFICIENT_FUNDS`` decline, ``THREE_D_SECURE`` awaits the shopper (answered with
    ``authenticate``), ``UNAVAILABLE`` / ``REFUSED`` raise; any other token is declined.
    ``fail_next(operation, error)`` makes the next call of an operation raise before
    anything happens. Idempotency keys and money limits hold as at every adapter: a
    key answers its first outcome again (another request under it is refused), a
    refused or failed call records nothing. ``executions`` lists the calls that moved
    money or changed state, as (operation, key), and ``executed`` counts them by
    operation (replays excluded); ``calls`` lists every call."""

    name = NAME

    def __init__(self) -> None:
        self.payments: dict[str, GatewayPayment] = {}
        self.executed: Counter[str] = Counter()
        self.executions: list[tuple[str, str]] = []
        self.calls: list[tuple[str, str]] = []
        self._answers: dict[tuple[str, str], tuple[str, GatewayOutcome]] = {}
        self._failures: dict[str, list[Exception]] = {}
        self._serial = 0

    def fail_next(self, operation: str, error: Exception | None = None) -> None:
        """The next call of ``operation`` (``authorize``, ``capture``, ``void``,
        ``refund``, ``retrieve``) raises ``error`` (default: the gateway is down)."""
        self._failures.setdefault(operation, []).append(
            error or GatewayUnavailable(f"the gateway is down ({operation})")
        )

    def recover(self) -> None:
        """The failures asked for with ``fail_next`` and not yet raised: forgotten."""
        self._failures.clear()

    # --- the port -------------------------------------------------------------------

    def authorize(
        self,
        amount: Money,
        payment_method_token: str,
        idempotency_key: str,
        capture: CaptureMode = "manual",
    ) -> AuthorizationOutcome:
        def act() -> AuthorizationOutcome:
            if payment_method_token == UNAVAILABLE:
                raise GatewayUnavailable("the gateway timed out")
            if payment_method_token == REFUSED:
                raise GatewayRefused("the gateway refused this payment method")
            reference = self._new("pay")
            if payment_method_token == THREE_D_SECURE:
                self._keep(reference, ACTION_REQUIRED, amount)
                return self._action_required(reference)
            if payment_method_token != OK:
                code, reason = DECLINES.get(payment_method_token, DECLINES[DECLINED])
                return Declined(reference, code, reason, _event("declined", reference))
            captured = None
            if capture == "automatic":
                capture_id = self._new("ch")
                captured = Captured(reference, capture_id, amount, _event("captured", capture_id))
            entry = self._keep(reference, AUTHORIZED if captured is None else CAPTURED, amount)
            if captured is not None:
                entry.captured = amount
            return Authorized(reference, amount, _event("authorized", reference), captured)

        request = {"amount": amount.to_dict(), "token": payment_method_token, "capture": capture}
        return self._once("authorize", idempotency_key, request, act)

    def capture(self, reference: str, amount: Money, idempotency_key: str) -> Captured:
        def act() -> Captured:
            entry = self._entry(reference)
            _require(entry, {AUTHORIZED}, "capture")
            check_capture(positive(amount, entry.authorized.currency, "capture"), entry.authorized)
            capture_id = self._new("ch")
            entry.status, entry.captured = CAPTURED, amount
            return Captured(reference, capture_id, amount, _event("captured", capture_id))

        request = {"reference": reference, **amount.to_dict()}
        return self._once("capture", idempotency_key, request, act)

    def void(self, reference: str, idempotency_key: str) -> Voided:
        def act() -> Voided:
            entry = self._entry(reference)
            if entry.status != VOIDED:
                _require(entry, {AUTHORIZED, ACTION_REQUIRED}, "void")
                entry.status = VOIDED
            return Voided(reference, _event("voided", reference))

        return self._once("void", idempotency_key, {"reference": reference}, act)

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> Refunded:
        def act() -> Refunded:
            entry = self._entry(reference)
            _require(entry, {CAPTURED}, "refund")
            check_refund(
                positive(amount, entry.captured.currency, "refund"), entry.captured, entry.refunded
            )
            entry.refunded += amount
            refund_id = self._new("re")
            return Refunded(reference, refund_id, amount, _event("refunded", refund_id))

        request = {"reference": reference, **amount.to_dict()}
        return self._once("refund", idempotency_key, request, act)

    def retrieve(self, reference: str) -> AuthorizationOutcome:
        self.calls.append(("retrieve", reference))
        self._maybe_fail("retrieve")
        return self._standing(self._entry(reference))

    # --- what the shopper does at the gateway -----------------------------------------

    def authenticate(self, reference: str, approve: bool) -> AuthorizationOutcome:
        """The shopper's answer to the 3-D Secure challenge: the first one counts;
        later ones answer how the payment stands."""
        entry = self._entry(reference)
        if entry.status == ACTION_REQUIRED:
            entry.status = AUTHORIZED if approve else FAILED
        return self._standing(entry)

    # --- helpers --------------------------------------------------------------------

    def _once(
        self, operation: str, key: str, request: Mapping[str, Any], act: Callable[[], OutcomeT]
    ) -> OutcomeT:
        self.calls.append((operation, key))
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise ValueError("an idempotency key is 1-255 characters")
        fingerprint = request_fingerprint(dict(request))
        answered = self._answers.get((operation, key))
        if answered is not None:
            if answered[0] != fingerprint:
                raise IdempotencyKeyReused(
                    f"this idempotency key was used for another {operation} request"
                )
            return cast("OutcomeT", answered[1])
        self._maybe_fail(operation)
        outcome = act()
        self._answers[operation, key] = (fingerprint, outcome)
        self.executed[operation] += 1
        self.executions.append((operation, key))
        return outcome

    def _maybe_fail(self, operation: str) -> None:
        pending = self._failures.get(operation)
        if pending:
            raise pending.pop(0)

    def _new(self, kind: str) -> str:
        self._serial += 1
        return f"fake_{kind}_{self._serial}"

    def _keep(self, reference: str, status: str, amount: Money) -> GatewayPayment:
        zero = Money.zero(amount.currency)
        entry = GatewayPayment(reference, status, amount, zero, zero)
        self.payments[reference] = entry
        return entry

    def _entry(self, reference: str) -> GatewayPayment:
        entry = self.payments.get(reference)
        if entry is None:
            raise UnknownGatewayReference(f"no {NAME} payment {reference[:80]!r}")
        return entry

    def _standing(self, entry: GatewayPayment) -> AuthorizationOutcome:
        reference = entry.reference
        if entry.status == ACTION_REQUIRED:
            return self._action_required(reference)
        if entry.status in (FAILED, VOIDED):
            code, reason = AUTHENTICATION_FAILED
            return Declined(reference, code, reason, _event("declined", reference))
        return Authorized(reference, entry.authorized, _event("authorized", reference))

    @staticmethod
    def _action_required(reference: str) -> ActionRequired:
        return ActionRequired(
            reference, _event("action-required", reference), client_secret=f"{reference}_secret"
        )


def _event(kind: str, object_id: str) -> str:
    return gateway_event_id(NAME, kind, object_id)


def _require(entry: GatewayPayment, allowed: set[str], action: str) -> None:
    if entry.status not in allowed:
        raise PaymentTransitionNotAllowed(
            f"cannot {action} a payment that is {entry.status.replace('_', ' ')}"
        )


# --- the other ports ----------------------------------------------------------------------


class MemoryPaymentMethods:
    """``commands.ordering.carts.PaymentMethods`` in a dict."""

    def __init__(self) -> None:
        self.tokens: dict[UUID, str] = {}

    def keep(self, order_id: UUID, token: str) -> None:
        self.tokens[order_id] = token

    def token_for(self, order_id: UUID) -> str | None:
        return self.tokens.get(order_id)

    def forget(self, order_id: UUID) -> None:
        self.tokens.pop(order_id, None)


# --- the shop -----------------------------------------------------------------------------


@dataclass
class MemoryOrdering:
    """What ``infra.wiring.ordering.Ordering`` holds, on the in-memory store."""

    app: OrderingApplication
    payments_app: PaymentsApplication
    carts: CartCommands
    orders: OrderCommands
    payments: PaymentCommands
    payment_methods: MemoryPaymentMethods


@dataclass
class MemoryShop:
    clock: FakeClock
    gateway: FakeGateway
    catalog_app: CatalogApplication
    catalog_commands: CatalogCommands
    inventory_app: InventoryApplication
    inventory_commands: InventoryCommands
    ordering: MemoryOrdering

    @property
    def carts(self) -> CartCommands:
        return self.ordering.carts

    @property
    def orders(self) -> OrderCommands:
        return self.ordering.orders

    @property
    def payments(self) -> PaymentCommands:
        return self.ordering.payments

    @property
    def payment_methods(self) -> MemoryPaymentMethods:
        return self.ordering.payment_methods

    def saga(
        self, *, payments: PaymentCommands | None = None, partition: int = 0, partitions: int = 1
    ) -> CheckoutSaga:
        """A checkout saga with a tracking recorder of its own: it is delivered every
        event of the logs from the start."""
        return CheckoutSaga(
            POPOTrackingRecorder(),
            ordering=self.ordering.app,
            inventory=self.inventory_commands,
            payments=payments or self.payments,
            payment_methods=self.payment_methods,
            clock=self.clock,
            partition=partition,
            partitions=partitions,
        )

    def sweep(
        self, *order_ids: UUID, timeout: timedelta = timedelta(minutes=15)
    ) -> AbandonedAuthentications:
        """The sweep of abandoned authentications, the read model listing ``order_ids``."""
        return AbandonedAuthentications(
            self.ordering.app, self.payments, Listed(*order_ids), self.clock, timeout
        )

    def shopper(self, order_id: UUID) -> Principal:
        """The principal of the customer who placed the order."""
        return customer(self.order(order_id).customer_id)

    # --- the Postgres saga tests' helpers, on this shop ---------------------------------

    def _as_container(self) -> Container:
        return cast("Container", self)

    def product(self, price: str = "20.00", stock: int = 5) -> tuple[UUID, str]:
        """A published product at ``price`` EUR with ``stock`` units: (id, SKU)."""
        return saga_helpers.product(self._as_container(), price, stock)

    def checkout(self, product_id: UUID, quantity: int, token: str = OK) -> UUID:
        """A new customer's order of ``quantity`` of the product: its id."""
        return saga_helpers.checkout(self._as_container(), product_id, quantity, token)

    def run(self, saga: CheckoutSaga, *, in_pulls: bool = True) -> int:
        """Deliver every event of both logs after the saga's positions (and those its
        steps add) until none is left: how many."""
        return saga_helpers.run(self._as_container(), saga, in_pulls=in_pulls)

    def stock(self, sku: str) -> StockItem:
        return saga_helpers.stock(self._as_container(), sku)

    def order(self, order_id: UUID) -> Order:
        return saga_helpers.order(self._as_container(), order_id)

    def payment(self, order_id: UUID) -> Payment:
        return saga_helpers.payment(self._as_container(), order_id)


ADMIN = saga_helpers.ADMIN
ADDRESS = saga_helpers.ADDRESS


def customer(user_id: UUID | None = None) -> Principal:
    return Principal(user_id or uuid4(), uuid4(), frozenset({"customer"}))


def memory_shop(gateway: FakeGateway | None = None) -> MemoryShop:
    """A new, empty shop on the in-memory store."""
    clock = FakeClock()
    gateway = gateway or FakeGateway()
    catalog_app = CatalogApplication(env=POPO)
    catalog = CatalogCommands(catalog_app)
    inventory_app = InventoryApplication(env=POPO)
    ordering_app = OrderingApplication(env=POPO)
    payments_app = PaymentsApplication(env=POPO)
    payments = PaymentCommands(payments_app, gateway)
    methods = MemoryPaymentMethods()
    return MemoryShop(
        clock=clock,
        gateway=gateway,
        catalog_app=catalog_app,
        catalog_commands=catalog,
        inventory_app=inventory_app,
        inventory_commands=InventoryCommands(inventory_app, catalog),
        ordering=MemoryOrdering(
            app=ordering_app,
            payments_app=payments_app,
            carts=CartCommands(ordering_app, catalog, methods, clock),
            orders=OrderCommands(ordering_app, payments, clock),
            payments=payments,
            payment_methods=methods,
        ),
    )

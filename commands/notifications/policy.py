"""The notification policy: follows the users, ordering, inventory and reviews logs
and decides, for each event that someone should hear about, what is told to whom
on which channels. Each decision is written in the same transaction as the
policy's tracking (``ViewProjection``), so an event delivered twice decides once
and a crash before the commit decides again from scratch; the sends happen later,
from the recorded deliveries (``commands.notifications.delivery``).

An erased person (``User.Erased``, ADR 0024) is forgotten by every store of the area
(``Forgetting``), in the same transaction, and told nothing from then on: neither
of the erasure (what would it go to? the address is shredded first, and the
request's answer is the confirmation) nor of anything after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from psycopg import Cursor
from psycopg.rows import DictRow

from commands.catalog.inventory import SkuOwners
from commands.notifications.decisions import Decision, Notice, Recipient, decide
from commands.notifications.ports import Devices, Forgetting
from commands.notifications.states import AggregateStates
from commands.ports import Clock
from commands.users.tokens import TokenCodec
from domain.inventory import StockItem
from domain.money import Money
from domain.notifications import Channel, Kind, Preferences
from domain.orders import Order
from domain.payments import Payment, PaymentStatus, payment_id
from domain.reviews import Review
from domain.users import TokenPurpose, User, erased_email
from projections.engine import View, ViewProjection

NOTIFIER_LOGS = ("users", "ordering", "inventory", "reviews")


class Notifier(ViewProjection[View]):
    name = "notifier"
    follows = NOTIFIER_LOGS

    def __init__(
        self,
        view: View,
        *,
        apps: dict[str, Application[Any]],
        sellers: SkuOwners,
        devices: Devices | None = None,
        tokens: TokenCodec,
        public_url: str,
        record: Callable[[Cursor[Any], Decision], None],
        channels: frozenset[Channel],
        clock: Clock,
        forgetting: Sequence[Forgetting] = (),
        erased: Callable[[UUID], bool] | None = None,
    ) -> None:
        """``forgetting``: the stores that forget an erased person, in that order;
        ``erased``: whether a person is erased (their key deleted), for the state the
        notifier keeps of them from before (``AggregateStates``) that does not show
        it: an order event read before the users log's erasure event."""
        super().__init__(view)
        self._apps = apps
        self._users = AggregateStates(apps["users"])
        self._orders = AggregateStates(apps["ordering"])
        self._stock = AggregateStates(apps["inventory"])
        self._reviews = AggregateStates(apps["reviews"])
        self._states = {
            "User": self._users,
            "Order": self._orders,
            "StockItem": self._stock,
            "Review": self._reviews,
        }
        self._sellers = sellers
        self._devices = devices
        self._tokens = tokens
        self._url = public_url.rstrip("/")
        self._record = record
        self._channels = channels
        self._clock = clock
        self._forgetting = forgetting
        self._erased = erased

    def apply(self, event: Any, cursor: Cursor[DictRow]) -> None:
        if isinstance(event, User.Erased):
            for store in self._forgetting:  # each idempotent: a redelivery changes nothing
                store.forget(event.originator_id, cursor)
        notices = list(self.notices(event))
        if not notices:
            states = self._states.get(type(event).__qualname__.partition(".")[0])
            if states is not None:
                states.advance(event)
            return
        # What is decided here is sent by other processes at once: it must not be
        # lost to a database crash after they saw it (views commit asynchronously).
        cursor.execute("SET LOCAL synchronous_commit = on")
        trigger = f"{type(event).__qualname__}:{event.originator_id}:{event.originator_version}"
        now = self._clock()
        for notice in notices:
            recipient = self._recipient(notice, event)
            if recipient is None:
                continue
            decision = decide(trigger, notice, recipient, now, self._url, self._channels)
            if decision is not None:
                self._record(cursor, decision)

    def notices(self, event: Any) -> Iterator[Notice]:
        match event:
            case User.TokenIssued():
                yield self._link_notice(event)
            case User.Deactivated():
                yield Notice(Kind.ACCOUNT_DEACTIVATED, event.originator_id, {})
            case User.RoleGranted() | User.RoleRevoked():
                granted = isinstance(event, User.RoleGranted)
                yield Notice(
                    Kind.ROLE_CHANGED, event.originator_id, {"role": event.role, "granted": granted}
                )
            case StockItem.LowStockReached():
                seller = self._sellers.seller_of_sku(self._sku(event))
                if seller is not None:
                    sku = self._sku(event)
                    yield Notice(
                        Kind.LOW_STOCK,
                        seller,
                        {
                            "sku": sku,
                            "available": event.available,
                            "threshold": event.threshold,
                            "link": f"{self._url}/inventory?sku={sku}",
                        },
                    )
            case Review.SellerReplied():
                review: Review = self._reviews.at(event)
                yield Notice(
                    Kind.REVIEW_REPLY,
                    review.author_id,
                    {
                        "product_id": str(review.product_id),
                        "reply": event.body,
                        "link": f"{self._url}/products/{review.product_id}/reviews",
                    },
                )
            case _ if (order_notice := self._order_notice(event)) is not None:
                yield order_notice

    def _link_notice(self, event: User.TokenIssued) -> Notice:
        purpose = TokenPurpose(event.purpose)
        user: User = self._users.at(event)
        token = self._tokens.link_token(purpose, user.id, event.token_id)
        path = "/verify-email" if purpose is TokenPurpose.VERIFY_EMAIL else "/reset-password"
        kind = Kind.VERIFY_EMAIL if purpose is TokenPurpose.VERIFY_EMAIL else Kind.RESET_PASSWORD
        return Notice(
            kind,
            user.id,
            {
                "link": f"{self._url}{path}?token={token}",
                "token": token,
                "expires_at": event.expires_at.isoformat(),
            },
            # The address as it was when the link was issued: the one it verifies.
            email=user.email,
        )

    def _order_notice(self, event: Any) -> Notice | None:
        order_id = event.originator_id
        link = f"{self._url}/orders/{order_id}"
        base = {"order_id": str(order_id), "link": link}
        match event:
            case Order.Confirmed() | Order.ConfirmedWithoutPayment():
                order = self._order(event)
                return Notice(
                    Kind.ORDER_CONFIRMED, order.customer_id, base | _order_summary(order), order_id
                )
            case Order.Rejected():
                order = self._order(event)
                kind = (
                    Kind.PAYMENT_FAILED if self._payment_failed(order_id) else Kind.ORDER_REJECTED
                )
                return Notice(kind, order.customer_id, base | {"reason": event.reason}, order_id)
            case Order.AuthenticationRequested():
                order = self._order(event)
                return Notice(
                    Kind.PAYMENT_AUTHENTICATION,
                    order.customer_id,
                    base | {"link": event.approval_url or link},
                    order_id,
                )
            case Order.Shipped():
                context = {"carrier": event.carrier, "tracking_number": event.tracking_number}
                return self._about(event, Kind.ORDER_SHIPPED, base | context)
            case Order.Delivered():
                return self._about(event, Kind.ORDER_DELIVERED, base)
            case Order.Cancelled():
                return self._about(event, Kind.ORDER_CANCELLED, base | {"reason": event.reason})
            case Order.ReturnApproved():
                return self._about(event, Kind.RETURN_APPROVED, base)
            case Order.ReturnRefused():
                return self._about(event, Kind.RETURN_REFUSED, base | {"reason": event.reason})
            case Order.Refunded():
                return self._about(event, Kind.REFUND_ISSUED, base | {"amount": event.amount})
        return None

    def _about(self, event: Any, kind: Kind, context: dict[str, Any]) -> Notice:
        return Notice(kind, self._order(event).customer_id, context, event.originator_id)

    def _order(self, event: Any) -> Order:
        order: Order = self._orders.at(event)
        return order

    def _payment_failed(self, order_id: UUID) -> bool:
        try:
            payment: Payment = self._apps["payments"].repository.get(payment_id(order_id))
        except AggregateNotFoundError:
            return False
        return payment.status == PaymentStatus.FAILED.value

    def _sku(self, event: Any) -> str:
        item: StockItem = self._stock.at(event)
        return item.sku

    def _recipient(self, notice: Notice, event: Any) -> Recipient | None:
        """The recipient as of ``event`` when it is their own account's, else as the
        notifier last saw them."""
        own = isinstance(event, User.Event) and event.originator_id == notice.user_id
        user: User | None = self._users.at(event) if own else self._users.latest(notice.user_id)
        if user is None or self._is_erased(user):
            return None
        preferences = Preferences.from_profile(user.notification_preferences)
        # Devices are read only for a push this person would get: a query per notice.
        devices = self._devices
        pushed = devices is not None and preferences.allows(notice.kind, Channel.PUSH)
        return Recipient(
            user_id=user.id,
            name=user.name,
            email=user.email,
            phone=user.phone,
            active=user.active,
            preferences=preferences,
            devices=[d.id for d in devices.of_user(user.id)] if devices and pushed else [],
        )

    def _is_erased(self, user: User) -> bool:
        """Erased, or being erased: its key deleted, the account read from events
        before the erasure event shows the erased address."""
        if user.erased or user.email == erased_email(user.id):
            return True
        return self._erased is not None and self._erased(user.id)


def _order_summary(order: Order) -> dict[str, Any]:
    lines = []
    for line in order.lines:
        price = Money.from_dict(line["unit_price"])
        lines.append(
            {
                "sku": line["sku"],
                "quantity": line["quantity"],
                "unit_price": price.to_dict(),
                "line_total": Money(price.amount * line["quantity"], price.currency).to_dict(),
            }
        )
    return {
        "lines": lines,
        "total": order.total.to_dict(),
        "shipping_address": dict(order.shipping_address),
    }

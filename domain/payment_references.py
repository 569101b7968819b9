"""An index from a gateway's payment reference to our Payment.

A webhook names the payment by the gateway's reference (a Stripe PaymentIntent id);
``PaymentReference`` (id derived from the gateway and the reference) names the
payment it belongs to. It is saved with the payment when the gateway first answers,
in the same atomic save, so every reference we hold is findable at once.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event


def payment_reference_id(gateway: str, reference: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"/eventshop/payments/references/{gateway}/{reference}")


class PaymentReference(Aggregate):
    @staticmethod
    def create_id(gateway: str, reference: str, payment_id: UUID) -> UUID:
        return payment_reference_id(gateway, reference)

    class Indexed(Aggregate.Created):
        gateway: str
        reference: str
        payment_id: UUID

    @event(Indexed)
    def __init__(self, gateway: str, reference: str, payment_id: UUID) -> None:
        self.gateway = gateway
        self.reference = reference
        self.payment_id = payment_id

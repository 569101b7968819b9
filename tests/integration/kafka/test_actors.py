"""The actor through the scaled mode: an order placed by a request is relayed to Kafka
by ``shop serve relay``; a ``shop serve worker`` runs the checkout saga, which confirms
it as itself, and the orders view, which records who acted at each step from the
events it decoded off Kafka."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from psycopg.rows import dict_row

from commands.actors import acting_as
from domain.actors import Actor, ActorKind
from infra.wiring.process import Container
from tests.integration.kafka.conftest import Roles
from tests.integration.test_checkout_saga import checkout, product
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

SHOPPER = Actor(ActorKind.USER, "7a1d5b1e-3a34-4c43-a9d5-2b1f0b7f7c11", "req-kafka", "192.0.2.30")


def timeline_actors(container: Container, order_id: UUID) -> list[dict[str, Any]]:
    with container.pool.connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        cursor.execute(
            "SELECT t.status, a.actor FROM read.order_timeline t "
            "JOIN read.order_timeline_actors a USING (order_id, version) "
            "WHERE t.order_id = %s ORDER BY t.version",
            (order_id,),
        )
        return cursor.fetchall()


def test_the_worker_reads_the_actor_and_its_saga_acts_as_itself(
    container: Container, roles: Roles
) -> None:
    product_id, _ = product(container)
    with acting_as(SHOPPER):
        order_id = checkout(container, product_id, 1, "pm_card_visa")
    roles.start("relay", db_pool_size=1)
    roles.start("worker", db_pool_size=4)

    def decided() -> list[dict[str, Any]] | None:
        steps = timeline_actors(container, order_id)
        return steps if [s["status"] for s in steps] == ["placed", "confirmed"] else None

    placed, confirmed = eventually(decided, "the order confirmed by the worker", timeout=120)
    assert placed["actor"] == SHOPPER.as_mapping()
    assert confirmed["actor"]["kind"] == "system"
    assert confirmed["actor"]["id"].startswith("checkout_saga")

"""Redis over TLS from a ``rediss://`` URL: a ``shop run`` whose Redis (a server of
the test's own, TLS only, with a certificate from the test's CA) is trusted through
the URL's ``ssl_ca_certs`` keeps its rate-limit counters there and is ready; one
whose URL trusts another CA does not get a connection, and its readiness says
Redis is failing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.certificates import Pki, make_pki
from tests.support.own_redis import OwnRedis
from tests.support.polling import eventually
from tests.support.server import NO_ADDRESS_LIMITS, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    server = OwnRedis(tls=make_pki(tmp_path_factory.mktemp("redis-pki")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pki_of(server: OwnRedis) -> Pki:
    assert server.tls is not None
    return server.tls


def test_a_redis_trusted_through_the_url_is_used_over_tls(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory, tls_redis: OwnRedis
) -> None:
    url = tls_redis.tls_url(pki_of(tls_redis).ca)
    env = {**NO_ADDRESS_LIMITS, "SHOP_REDIS_URL": url}
    data = tmp_path_factory.mktemp("shop")
    with running_server(make_database(), data, env) as server, server.client() as client:
        assert client.get("/health/ready").status_code == 200
        assert client.get("/categories").status_code == 200
    # The route limits count in Redis when it is configured: this one, over TLS.
    assert list(tls_redis.client().scan_iter("*reads*"))


def test_a_redis_whose_certificate_the_url_does_not_trust_fails_readiness(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory, tls_redis: OwnRedis
) -> None:
    url = tls_redis.tls_url(pki_of(tls_redis).other_ca)
    env = {**NO_ADDRESS_LIMITS, "SHOP_REDIS_URL": url}
    data = tmp_path_factory.mktemp("shop")
    with running_server(make_database(), data, env) as server, server.client() as client:

        def refused() -> dict[str, Any] | None:
            answer = client.get("/health/ready")
            return answer.json() if answer.status_code == 503 else None

        down = eventually(refused, "readiness naming Redis")
    assert "redis" in down["failing"], down

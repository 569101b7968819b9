"""``shop run`` serving HTTPS with a certificate the test made (SHOP_TLS_CERT and
SHOP_TLS_KEY): a client that trusts the test's CA is served, with HSTS; plain HTTP
on the port and a client trusting another CA get nothing; a certificate without
its key stops the start with the reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.support.certificates import Pki, make_pki
from tests.support.server import clean_env, free_port, launch, run_shop, stop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_env(database_url: str, data: Path, pki: Pki) -> dict[str, str]:
    return {
        **clean_env(),
        "SHOP_DATABASE_URL": database_url,
        "SHOP_DATA_DIR": str(data),
        "SHOP_SECRET_KEY": TEST_SECRET,
        "SHOP_DB_POOL_SIZE": "2",
        "SHOP_TLS_CERT": str(pki.cert),
        "SHOP_TLS_KEY": str(pki.key),
    }


@pytest.fixture(scope="module")
def served(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> Iterator[str]:
    data = tmp_path_factory.mktemp("shop-tls")
    port = free_port()
    process = launch(tls_env(make_database(), data, pki), port, data / "shop.log", str(pki.ca))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


def test_a_client_trusting_the_ca_is_served_over_tls_with_hsts(served: str, pki: Pki) -> None:
    with httpx.Client(base_url=f"https://{served}", verify=str(pki.ca)) as client:
        answer = client.get("/categories")
    assert answer.status_code == 200, answer.text
    assert answer.headers["strict-transport-security"].startswith("max-age=")


def test_plain_http_on_the_port_gets_no_answer(served: str) -> None:
    with httpx.Client(base_url=f"http://{served}") as client, pytest.raises(httpx.HTTPError):
        client.get("/categories")


def test_a_client_trusting_another_ca_refuses_the_server(served: str, pki: Pki) -> None:
    with (
        httpx.Client(base_url=f"https://{served}", verify=str(pki.other_ca)) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get("/categories")


def test_a_certificate_without_its_key_stops_the_start(
    make_database: Callable[[], str], tmp_path: Path, pki: Pki
) -> None:
    env = tls_env(make_database(), tmp_path, pki)
    env["SHOP_TLS_KEY"] = str(pki.ca)  # a certificate, not the key of SHOP_TLS_CERT
    done = run_shop(env, "run", "--port", str(free_port()))
    assert done.returncode != 0
    assert "SHOP_TLS_CERT / SHOP_TLS_KEY do not load" in done.stdout + done.stderr

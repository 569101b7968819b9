"""``shop run --workers 2``: HTTP from two processes, the projections (and the mail
policy) in the parent."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import CONSISTENCY
from tests.support.server import running_server
from tests.support.users_client import verified_account

pytestmark = pytest.mark.e2e


def test_several_workers_serve_with_the_projections_in_the_parent(
    make_database: Callable[[], str], tmp_path: Path, redis_url: str
) -> None:
    """``shop run --workers 2``: HTTP from two processes, the projections (and the mail
    policy) in the parent; a write through one connection is read, with its
    consistency token, through others."""
    settings = {"SHOP_WORKERS": "2", "SHOP_REDIS_URL": redis_url}
    with running_server(make_database(), tmp_path, settings) as server:
        with server.client() as client:
            account = verified_account(server, client, "worker")
        for i in range(4):  # a new connection each time: either worker may answer
            with server.client() as writer:
                patched = writer.patch(
                    "/users/me", json={"name": f"Worker {i}"}, headers=account.headers
                )
            assert patched.status_code == 200, patched.text
            with server.client() as reader:
                consistent = {**account.headers, CONSISTENCY: patched.headers[CONSISTENCY]}
                me = reader.get("/users/me", headers=consistent)
            assert me.status_code == 200, me.text
            assert me.json()["name"] == f"Worker {i}"


def test_a_scrape_of_either_worker_counts_the_requests_of_both(
    make_database: Callable[[], str], tmp_path: Path, redis_url: str
) -> None:
    """Each worker counts its requests into files in ``<data dir>/metrics``; a scrape,
    whichever worker answers it, adds up every worker's."""
    settings = {"SHOP_WORKERS": "2", "SHOP_REDIS_URL": redis_url}
    missing = uuid.uuid4()
    product = {"method": "GET", "route": "/products/{product_id}", "status": "404"}
    with running_server(make_database(), tmp_path, settings) as server:
        for _ in range(10):  # a new connection each time: either worker may answer
            with server.client() as client:
                assert client.get(f"/products/{missing}").status_code == 404
        for _ in range(4):
            with server.client() as client:
                scraped = client.get("/metrics")
            assert scraped.status_code == 200
            counted = [
                sample.value
                for family in text_string_to_metric_families(scraped.text)
                for sample in family.samples
                if sample.name == "http_requests_total" and sample.labels == product
            ]
            assert counted == [10.0]
        assert len(list((tmp_path / "metrics").glob("counter_*.db"))) == 2  # one per worker

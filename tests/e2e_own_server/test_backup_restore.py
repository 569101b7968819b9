"""The restore drill: a shop with a confirmed order is backed up (``shop backup``),
its database destroyed, restored (``shop restore --rebuild``: every read model
rebuilt from the restored logs), and served again: every answer is what it was.
And the refusals: an altered archive, or a database that is not empty, are refused
and change nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.sql import SQL, Identifier

from infra.postgres.backup import BackupError, backup, log_heads, restore
from tests.support.catalog_client import Cast, make_cast
from tests.support.ordering_client import confirmed_order, stock_level
from tests.support.server import launch, start_server, stop
from tests.support.users_client import Account, verified_account

pytestmark = pytest.mark.e2e


def answers(client: httpx.Client, cast: Cast, shopper: Account, order_id: str, sku: str) -> Any:
    """What the shop answers about the order, its product, its stock and its buyer."""
    order = client.get(f"/orders/{order_id}", headers=shopper.headers)
    assert order.status_code == 200, order.text
    product_id = order.json()["lines"][0]["product_id"]
    pages = {
        path: client.get(path, headers=shopper.headers)
        for path in ("/orders", "/users/me", f"/products/{product_id}", "/products?limit=50")
    }
    assert all(page.status_code == 200 for page in pages.values()), pages
    return {
        "order": order.json(),
        **{path: page.json() for path, page in pages.items()},
        "stock": stock_level(client, cast, sku),
    }


def drop(database_url: str) -> None:
    name = str(conninfo_to_dict(database_url)["dbname"])
    with psycopg.connect(make_conninfo(database_url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(SQL("DROP DATABASE {0} WITH (FORCE)").format(Identifier(name)))


def test_a_destroyed_shop_restored_answers_as_before(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    database = make_database()
    data = Path(tmp_path_factory.mktemp("shop-drill"))
    archive = data / "backups" / "shop.dump"
    process, server = start_server(database, data)
    try:
        cast = make_cast(server)
        with server.client() as client:
            shopper = verified_account(server, client, "drill")
            order_id, sku = confirmed_order(client, cast, shopper)
            before = answers(client, cast, shopper, order_id, sku)
    finally:
        stop(process)

    made = server.shop("backup", str(archive))
    assert made.returncode == 0, made.stdout + made.stderr
    drop(database)
    done = server.shop("restore", str(archive), "--rebuild")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "generation 2 rebuilt" in done.stdout

    process = launch(server.env, server.base_url.rsplit(":", 1)[1], server.log_path)
    try:
        with server.client() as client:
            assert answers(client, cast, shopper, order_id, sku) == before
    finally:
        stop(process)


@pytest.fixture
def backed_up(server_database: str, tmp_path: Path) -> Path:
    archive = tmp_path / "shop.dump"
    backup(server_database, archive)
    return archive


@pytest.fixture
def server_database(make_database: Callable[[], str]) -> str:
    """A database with a row in a log, so heads are not all zero."""
    database = make_database()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.users_events (notification_id bigint, data text)")
        conn.execute("INSERT INTO public.users_events VALUES (1, 'jane')")
    return database


def test_an_altered_archive_is_refused_before_anything_is_touched(
    backed_up: Path, make_database: Callable[[], str]
) -> None:
    contents = bytearray(backed_up.read_bytes())
    contents[len(contents) // 2] ^= 0xFF
    backed_up.write_bytes(bytes(contents))
    target = make_database()
    with pytest.raises(BackupError, match="does not match its manifest"):
        restore(target, backed_up)
    with psycopg.connect(target) as conn:
        assert log_heads(conn) == {}


def test_a_database_that_is_not_empty_is_refused_and_kept(
    backed_up: Path, server_database: str
) -> None:
    with pytest.raises(BackupError, match="is not empty"):
        restore(server_database, backed_up)
    with psycopg.connect(server_database) as conn:
        assert log_heads(conn) == {"users_events": 1}


def test_an_archive_without_its_manifest_is_refused(backed_up: Path, tmp_path: Path) -> None:
    alone = tmp_path / "alone.dump"
    alone.write_bytes(backed_up.read_bytes())
    with pytest.raises(BackupError, match="no manifest"):
        restore("dbname=never_made", alone)

"""The export end to end: orders placed through the API of a real ``shop run``, in
two currencies (one declined), exported with ``shop export events``; then the
README's three example queries, exactly as written there, run by ``shop analytics
query`` and checked against what the test itself placed. A second export adds
only what came after the first; bad SQL is a message and exit code 2."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from statistics import median
from typing import Any

import orjson
import pytest

from infra.duckdb.event_queries import DuckDBEventQueries
from tests.support.catalog_client import Cast, listed_product, make_cast
from tests.support.ordering_client import add_to_cart, decided_order, place_order
from tests.support.server import Server, running_server

pytestmark = pytest.mark.e2e

README = Path(__file__).parents[2] / "README.md"


def example_queries() -> dict[str, str]:
    """The README's example queries, by the name in the comment above each."""
    found = re.findall(
        r"<!-- example-query: (\w+) -->\n```sql\n(.*?)```", README.read_text(), re.DOTALL
    )
    return dict(found)


@dataclass
class Placed:
    order: dict[str, Any]
    lines: dict[str, int]
    """Units per product id."""


@pytest.fixture(scope="module")
def shop(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with running_server(make_database(), tmp_path_factory.mktemp("export-shop")) as server:
        yield server


@pytest.fixture(scope="module")
def placed(shop: Server) -> list[Placed]:
    """Four orders placed and decided: three confirmed (EUR, USD, two lines in EUR),
    one declined (USD)."""
    cast: Cast = make_cast(shop)
    headers = cast.customer.headers
    with shop.client() as client:
        boots, _ = listed_product(client, cast, "12.50", 20, name="Export Boots")
        hat, _ = listed_product(client, cast, "7.25", 20, currency="USD", name="Export Hat")
        socks, _ = listed_product(client, cast, "3.10", 20, name="Export Socks")
        orders = []
        for product, units, extra, card in (
            (boots, 2, {}, "pm_card_visa"),
            (hat, 3, {}, "pm_card_visa"),
            (boots, 1, {socks: 4}, "pm_card_visa"),
            (hat, 5, {}, "pm_card_chargeDeclined"),
        ):
            for other, count in extra.items():
                add_to_cart(client, headers, other, count)
            order_id, position = place_order(client, headers, product, units, token=card)
            order = decided_order(client, headers, order_id, position)
            orders.append(Placed(order, {product: units, **extra}))
    assert [p.order["status"] for p in orders] == ["confirmed"] * 3 + ["rejected"]
    exported = shop.shop("export", "events")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "exported to" in exported.stdout
    return orders


def query(shop: Server, sql: str, output: str = "json") -> Any:
    done = shop.shop("analytics", "query", sql, "--format", output)
    assert done.returncode == 0, done.stdout + done.stderr
    return orjson.loads(done.stdout) if output == "json" else done.stdout


def confirmed(placed: list[Placed]) -> list[Placed]:
    return [p for p in placed if p.order["status"] == "confirmed"]


def at(order: dict[str, Any], status: str) -> datetime:
    return next(datetime.fromisoformat(e["at"]) for e in order["timeline"] if e["status"] == status)


def test_revenue_per_day_and_currency(shop: Server, placed: list[Placed]) -> None:
    expected: defaultdict[tuple[date, str], Decimal] = defaultdict(Decimal)
    orders: Counter[tuple[date, str]] = Counter()
    for p in confirmed(placed):
        key = (at(p.order, "placed").date(), p.order["currency"])
        expected[key] += Decimal(str(p.order["total"]))
        orders[key] += 1
    rows = query(shop, example_queries()["revenue_per_day"])
    assert {
        (date.fromisoformat(r["day"]), r["currency"]): (r["orders"], Decimal(r["revenue"]))
        for r in rows
    } == {key: (orders[key], expected[key]) for key in expected}
    assert {currency for _, currency in expected} == {"EUR", "USD"}


def test_top_products_by_units(shop: Server, placed: list[Placed]) -> None:
    units: Counter[str] = Counter()
    for p in confirmed(placed):
        units.update(p.lines)
    rows = query(shop, example_queries()["top_products"])
    assert [(r["product_id"], r["units"]) for r in rows] == sorted(
        units.items(), key=lambda item: (-item[1], item[0])
    )
    assert {r["name"] for r in rows} == {"Export Boots", "Export Hat", "Export Socks"}


def test_time_from_placed_to_confirmed(shop: Server, placed: list[Placed]) -> None:
    waits = [
        (at(p.order, "confirmed") - at(p.order, "placed")).total_seconds()
        for p in confirmed(placed)
    ]
    (row,) = query(shop, example_queries()["placed_to_confirmed"])
    assert row["orders"] == len(waits)
    # The export's times are the events' own; the timeline's are the commands' clock
    # readings, taken a moment earlier in the same call.
    assert float(row["median_seconds"]) == pytest.approx(median(waits), abs=0.05)
    assert float(row["max_seconds"]) == pytest.approx(max(waits), abs=0.05)
    assert 0 < float(row["median_seconds"]) <= float(row["p95_seconds"]) <= row["max_seconds"]


def test_csv_and_the_table(shop: Server, placed: list[Placed]) -> None:
    sql = "SELECT log, count(*) AS events FROM events GROUP BY log ORDER BY log"
    csv = query(shop, sql, "csv").splitlines()
    assert csv[0] == "log,events"
    assert "ordering" in {line.split(",")[0] for line in csv[1:]}
    assert "ordering" in query(shop, sql, "table")


def test_a_second_export_adds_only_what_came_after(shop: Server, placed: list[Placed]) -> None:
    export = Path(shop.env["SHOP_DATA_DIR"]) / "export"
    count = "SELECT count(*), count(DISTINCT log || ':' || position) FROM events"
    before = DuckDBEventQueries(export).run(count).rows
    cast = make_cast(shop)  # new accounts and a category: events in users and catalog
    again = shop.shop("export", "events")
    assert again.returncode == 0, again.stdout + again.stderr
    after = DuckDBEventQueries(export).run(count).rows
    [(n_before, distinct_before)], [(n_after, distinct_after)] = before, after
    assert n_after == distinct_after
    assert n_before == distinct_before
    assert int(str(n_after)) > int(str(n_before))
    with shop.client() as client:
        me = client.get("/users/me", headers=cast.customer.headers)
    assert me.status_code == 200, me.text
    registered = DuckDBEventQueries(export).run(
        "SELECT count(*) FROM users WHERE event_type = 'User.Registered' "
        f"AND aggregate_id = '{me.json()['user_id']}'"
    )
    assert registered.rows == [(1,)]


def test_bad_sql_is_a_message_and_exit_code_2(shop: Server, placed: list[Placed]) -> None:
    done = shop.shop("analytics", "query", "SELEC 1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "syntax error" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_an_unknown_log_is_refused_with_the_logs_there_are(
    shop: Server, placed: list[Placed]
) -> None:
    unknown = shop.shop("export", "events", "--log", "nope")
    assert unknown.returncode == 2
    assert "the logs are users, catalog, inventory" in unknown.stderr

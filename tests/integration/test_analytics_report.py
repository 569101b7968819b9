"""``shop analytics report`` over a small history: it prints the tables with the
sale in them and writes both charts as SVG; a reversed range is refused by name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from infra.entrypoints.cli import app
from infra.settings import Settings
from infra.wiring.process import Container
from infra.wiring.views import make_view
from projections.analytics.views import ANALYTICS_VIEWS
from streams.replay import catch_up
from tests.integration.test_checkout_saga import ADMIN, checkout, make_saga, product, run

pytestmark = pytest.mark.integration


def test_the_report_prints_the_figures_and_writes_the_charts(
    container: Container, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saga = make_saga(container, container.ordering.payments)
    product_id, _ = product(container, price="12.50", stock=5)
    order_id = checkout(container, product_id, 2, "pm_card_visa")
    run(container, saga)
    container.ordering.orders.ship(ADMIN, order_id, "DHL", "JD0001")
    apps = {a.name: a for a in container.applications()}
    for view_class, projection_class in ANALYTICS_VIEWS:
        view = make_view(container.conninfo, view_class, 1)
        for log in view_class.follows:
            catch_up(apps[log], view, projection_class(view))
        view.datastore.close()
    monkeypatch.setenv("SHOP_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("SHOP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHOP_SECRET_KEY", settings.resolved_secret())
    charts = tmp_path / "charts"

    result = CliRunner().invoke(app, ["analytics", "report", "--charts", str(charts)])

    assert result.exit_code == 0, result.output
    assert "Sales (orders placed in each period)" in result.output
    assert "25.00" in result.output  # the sale's gross, in the sales and product tables
    assert "Checkout funnel" in result.output
    for name, title in (
        ("revenue-per-day.svg", "Revenue per day"),
        ("funnel.svg", "Checkout funnel"),
    ):
        svg = ElementTree.parse(charts / name).getroot()
        assert svg.tag.endswith("svg")
        assert title in ElementTree.tostring(svg, encoding="unicode")
    today = datetime.now(UTC).date()
    refused = CliRunner().invoke(
        app, ["analytics", "report", "--from", str(today), "--to", "2000-01-01"]
    )
    assert refused.exit_code == 2
    assert "before it starts" in refused.output

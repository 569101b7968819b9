"""Every ``shop`` command that needs the settings refuses a bad one the same way:
the setting named on a line of its own, exit code 2, no traceback, nothing started
(``infra.entrypoints.cli_settings``)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from infra.entrypoints.cli import app

COMMANDS = [
    ["migrate"],
    ["run"],
    ["export", "events"],
    ["analytics", "query", "SELECT 1"],
    ["analytics", "report"],
    ["audit", "verify"],
    ["audit", "sign"],
    ["notifications", "status"],
    ["backup", "/nonexistent/shop.dump"],
    ["restore", "/nonexistent/shop.dump"],
    ["projections", "status"],
    ["dlq", "list"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_a_bad_setting_is_named_and_nothing_starts(argv: list[str]) -> None:
    done = CliRunner().invoke(app, argv, env={"SHOP_DB_POOL_SIZE": "many"})
    assert done.exit_code == 2, done.output
    assert "SHOP_DB_POOL_SIZE: Input should be a valid integer" in done.output
    assert "Traceback" not in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)

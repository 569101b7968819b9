"""The settings every ``shop`` command starts from, or their refusal before anything
starts: every problem on a line of its own and exit code 2 (a traceback would bury
them). Each command module takes its settings here, so a bad setting reads the same
whichever command met it."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from infra.settings import Settings

_errors = Console(stderr=True)
SETTINGS_REFUSED = 2


def load_settings(**given: Any) -> Settings:
    try:
        return Settings(**given)
    except ValidationError as error:
        for problem in error.errors(include_url=False, include_input=False):
            if problem["type"] == "default_factory_not_called":  # follows from another
                continue
            message = problem["msg"].removeprefix("Value error, ")
            if problem["loc"] and not message.startswith("SHOP_"):
                message = f"SHOP_{str(problem['loc'][0]).upper()}: {message}"
            _errors.print(message, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(SETTINGS_REFUSED) from None

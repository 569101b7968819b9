"""The whole app (``create_app``) in the test's own process, on a fresh database:
for end-to-end tests that reach into the process (replace a service, read an adapter)
where a ``shop run`` subprocess would not let them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from infra.entrypoints.http import create_app
from infra.settings import Settings
from infra.wiring.process import Container, bootstrap
from tests.conftest import TEST_SECRET


@contextmanager
def in_process_app(
    database_url: str, data_dir: Path, **settings: Any
) -> Iterator[tuple[FastAPI, Container]]:
    """The app and its container; ``settings`` over the test defaults (SMS off, so
    no delivery loop races a test for the rows it writes). ``environment`` is set
    after validation: what production refuses at start-up (a database without TLS,
    which the test server is) has tests of its own; here it is what it changes in
    the app."""
    environment = settings.pop("environment", "development")
    chosen = {"notify_sms": "off", **settings}
    validated = Settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        **chosen,
    )
    container = bootstrap(validated.model_copy(update={"environment": environment}))
    try:
        yield create_app(container), container
    finally:
        container.close()


def replace_notification_services(app: FastAPI, **changes: Any) -> None:
    """Some of what the notifications endpoints use, replaced (a clock the test moves,
    an SNS signature check that trusts a test certificate)."""
    app.state.notifications = replace(app.state.notifications, **changes)

"""The users area, built: its Application and commands, tokens, authentication of
bearer tokens and its views. (Its link mails are the notifications area's.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from eventsourcing.application import Application

from commands.http.callers import Authenticate
from commands.ports import Clock
from commands.users.accounts import UserCommands, UsersApplication
from commands.users.passwords import PasswordHasher
from commands.users.tokens import TokenCodec
from infra.entrypoints.request_context import noting_principal
from infra.postgres.authenticator import Authenticator
from infra.postgres.sealing_mapper import SealingMapper
from infra.postgres.waiting import PollingWaiter
from infra.settings import Settings
from infra.wiring.shared import Pools
from infra.wiring.views import view_specs
from projections.users.views import USER_VIEWS
from streams.embedded import ProjectionSpec


@dataclass
class Users:
    app: UsersApplication
    tokens: TokenCodec
    commands: UserCommands
    authenticate: Authenticate
    """Bearer tokens to principals, each noted in the request's log context."""
    specs: list[ProjectionSpec]
    ddl: list[str]
    """The tables of its adapters, created by ``Container.migrate``."""

    def applications(self) -> list[Application[Any]]:
        return [self.app]

    def close(self) -> None:
        self.app.close()


def build(settings: Settings, pools: Pools, clock: Clock) -> Users:
    app = UsersApplication(env=pools.app_env)
    if not isinstance(app.mapper, SealingMapper):
        raise TypeError("the event store's Factory makes every mapper a SealingMapper")
    tokens = TokenCodec(
        settings.resolved_secret(),
        access_ttl=timedelta(minutes=settings.access_token_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_days),
    )
    return Users(
        app=app,
        tokens=tokens,
        commands=UserCommands(
            app, PasswordHasher(), tokens, clock, PollingWaiter(pools.pool), app.mapper.keys
        ),
        authenticate=noting_principal(Authenticator(tokens, pools.read_pool)),
        specs=view_specs(pools.conninfo, USER_VIEWS),
        ddl=[],
    )

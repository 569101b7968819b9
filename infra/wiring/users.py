"""The users area, built: its Application and commands, tokens, the mailbox the
link mails go to, authentication of bearer tokens, its views and its policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import TrackingRecorder

from commands.ports import Clock
from commands.users.accounts import UserCommands, UsersApplication
from commands.users.emails import UserEmails
from commands.users.passwords import PasswordHasher
from commands.users.tokens import TokenCodec
from infra.postgres import mailbox
from infra.postgres.authenticator import Authenticator
from infra.postgres.mailbox import PostgresMailbox
from infra.postgres.waiting import PollingWaiter
from infra.settings import Settings
from infra.wiring.shared import Pools
from infra.wiring.views import tracking_only_view, view_specs
from projections.users.views import USER_VIEWS
from streams.embedded import ProjectionSpec


@dataclass
class Users:
    app: UsersApplication
    tokens: TokenCodec
    commands: UserCommands
    mailbox: PostgresMailbox
    authenticate: Authenticator
    specs: list[ProjectionSpec]
    ddl: list[str]
    """The tables of its adapters, created by ``Container.migrate``."""

    def applications(self) -> list[Application[Any]]:
        return [self.app]

    def close(self) -> None:
        self.app.close()


def build(settings: Settings, pools: Pools, clock: Clock) -> Users:
    app = UsersApplication(env=pools.app_env)
    tokens = TokenCodec(
        settings.resolved_secret(),
        access_ttl=timedelta(minutes=settings.access_token_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_days),
    )
    outbox = PostgresMailbox(pools.pool)

    def user_emails(view: TrackingRecorder) -> UserEmails:
        return UserEmails(
            view, users=app, mailer=outbox, tokens=tokens, public_url=settings.public_url
        )

    emails = ProjectionSpec(
        name=UserEmails.name,
        tables=[],
        upstream=(UsersApplication,),
        make_view=lambda g: tracking_only_view(pools.conninfo, UserEmails.name, g),
        make_projection=user_emails,
        rebuildable=False,
    )
    return Users(
        app=app,
        tokens=tokens,
        commands=UserCommands(app, PasswordHasher(), tokens, clock, PollingWaiter(pools.pool)),
        mailbox=outbox,
        authenticate=Authenticator(tokens, pools.read_pool),
        specs=[*view_specs(pools.conninfo, USER_VIEWS), emails],
        ddl=[mailbox.DDL],
    )

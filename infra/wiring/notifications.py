"""The notifications area, built: the policy that decides from the logs, a sender
per channel (``notification_channels`` chooses them), the in-app inbox and its
stream tickets, the devices, the suppression list and its feeds (unsubscribe, SES
feedback), the delivery queue, and one delivery loop per channel, started beside
the projections."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, TrackingRecorder

from commands.catalog.inventory import SkuOwners
from commands.notifications.delivery import Backoff, Deliverer, OutcomeListener
from commands.notifications.http.deps import NotificationsServices
from commands.notifications.outcomes import NotificationsApplication, OutcomeEvents
from commands.notifications.policy import NOTIFIER_LOGS, Notifier
from commands.notifications.ports import Forgetting
from commands.notifications.push import PushRouter
from commands.notifications.rendering import Renderer
from commands.notifications.tickets import StreamTickets
from commands.notifications.unsubscribe import UnsubscribeSigner, unsubscribe_headers
from commands.ports import Clock
from commands.users.tokens import TokenCodec
from domain.notifications import Channel
from infra.amazon.sns_signature import SnsSignatures
from infra.postgres import devices as devices_table
from infra.postgres import inbox as inbox_table
from infra.postgres import mailbox as mailbox_table
from infra.postgres import notifications as notifications_tables
from infra.postgres import stream_tickets as tickets_table
from infra.postgres import suppressions as suppressions_table
from infra.postgres.devices import PostgresDevices
from infra.postgres.mailbox import PostgresMailbox
from infra.postgres.notifications import PostgresDeliveryLog
from infra.postgres.resends import PostgresResends
from infra.postgres.sealing_mapper import SealingMapper
from infra.postgres.server import view_datastore
from infra.postgres.stream_tickets import PostgresStreamTickets
from infra.postgres.suppressions import PostgresSuppressions
from infra.settings import Settings
from infra.wiring.notification_channels import DeliveryQueues, delivery_queue, inbox_store, senders
from infra.wiring.shared import Pools
from infra.wiring.views import own_follower, upstream_of
from projections.engine import View, generation_schema
from projections.notifications.inbox import Inbox
from streams.embedded import ProjectionSpec
from streams.supervision import Supervised

if TYPE_CHECKING:
    from infra.amazon.sqs_dispatch import SqsDispatcher  # boto3: imported only with SQS


@dataclass
class Notifications:
    app: NotificationsApplication
    """Its event store: the final outcome of every delivery."""
    mailbox: PostgresMailbox
    suppressions: PostgresSuppressions
    log: PostgresDeliveryLog
    queue: DeliveryQueues
    inbox: Inbox
    tickets: StreamTickets
    deliverers: list[Deliverer]
    specs: list[ProjectionSpec]
    ddl: list[str]
    """The tables of its adapters, created by ``Container.migrate``."""
    services: NotificationsServices
    """What its HTTP routes need (``app.state.notifications``)."""
    dispatcher: SqsDispatcher | None = None
    """With the SQS queue: hands the recorded deliveries to their channel's queue."""
    loops: list[Supervised] = field(default_factory=list)

    def applications(self) -> list[Application[Any]]:
        return [self.app]

    def start_workers(self) -> None:
        """The delivery loops, one per channel (and the SQS dispatcher): in whichever
        process runs the projections. Started again, the running ones stop first
        (left running, they would outlive the pools they use)."""
        self._stop_workers()
        self.loops = [
            Supervised(f"notify_{d.channel}", _step(d), interval=0.0) for d in self.deliverers
        ]
        if self.dispatcher is not None:
            dispatcher = self.dispatcher
            self.loops.append(
                Supervised("notify_dispatch", lambda: dispatcher.dispatch_once() == 0, 0.2)
            )
        for loop in self.loops:
            loop.start()

    def _stop_workers(self) -> None:
        for loop in self.loops:
            loop.stop()
        self.loops = []

    def close(self) -> None:
        self._stop_workers()
        self.queue.close()
        self.app.close()


def _step(deliverer: Deliverer) -> Callable[[], bool]:
    return lambda: deliverer.run_once(wait_seconds=1.0) == 0


def build(
    settings: Settings,
    pools: Pools,
    clock: Clock,
    apps: Mapping[str, Application[Any]],
    sellers: SkuOwners,
    tokens: TokenCodec,
    on_outcome: OutcomeListener | None = None,
) -> Notifications:
    """``apps`` are the logs the policy follows, by name; ``sellers`` the catalog's
    lookup of a SKU's seller, ``tokens`` the users' link tokens."""
    pool = pools.pool
    app = NotificationsApplication(env=pools.app_env)
    outcome_events = OutcomeEvents(app)
    mailbox = PostgresMailbox(pool)
    inbox = inbox_store(settings, pools)
    devices = PostgresDevices(pool)
    queue, dispatcher = delivery_queue(settings, pools)
    log = PostgresDeliveryLog(pool)
    suppressions = PostgresSuppressions(pool)
    channels = senders(settings, mailbox, inbox, devices)
    signer = UnsubscribeSigner(settings.resolved_secret())
    headers = unsubscribe_headers(settings.public_url, signer)
    renderer = Renderer()
    backoff = Backoff(max_attempts=settings.notify_max_attempts)
    deliverers = [
        Deliverer(
            channel,
            queue=queue,
            log=log,
            sender=sender,
            renderer=renderer,
            suppressions=suppressions,
            clock=clock,
            unsubscribe_headers=headers if channel is Channel.EMAIL else None,
            backoff=backoff,
            on_outcome=on_outcome,
            outcome_events=outcome_events,
        )
        for channel, sender in channels.items()
    ]

    users_mapper = apps["users"].mapper
    if not isinstance(users_mapper, SealingMapper):
        raise TypeError("the event store's Factory makes every mapper a SealingMapper")
    keys = users_mapper.keys
    tickets = PostgresStreamTickets(pool)
    push = channels.get(Channel.PUSH)
    # The delivery log last: the others find the person's addresses in it; the push
    # senders before the devices, whose endpoints they read.
    forgetting: list[Forgetting] = [mailbox, suppressions, inbox, tickets]
    forgetting += [push] if isinstance(push, PushRouter) else []
    forgetting += [devices, log]

    def notifier(view: TrackingRecorder) -> Notifier:
        assert isinstance(view, View)
        return Notifier(
            view,
            apps=dict(apps),
            sellers=sellers,
            devices=devices if Channel.PUSH in channels else None,
            tokens=tokens,
            public_url=settings.public_url,
            record=notifications_tables.record,
            channels=frozenset(channels),
            clock=clock,
            forgetting=forgetting,
            erased=keys.is_erased,
        )

    spec = ProjectionSpec(
        name=Notifier.name,
        tables=[],
        upstream=tuple(own_follower(app, "Notifier") for app in upstream_of(Notifier)),
        make_view=lambda g: notifier_view(pools.conninfo, g, apps),
        make_projection=notifier,
        rebuildable=False,
    )
    feedback_topics = (
        [settings.sns_topic_arn_ses_feedback] if settings.sns_topic_arn_ses_feedback else []
    )
    return Notifications(
        app=app,
        mailbox=mailbox,
        suppressions=suppressions,
        log=log,
        queue=queue,
        inbox=inbox,
        tickets=tickets,
        deliverers=deliverers,
        specs=[spec],
        services=NotificationsServices(
            clock=clock,
            inbox=inbox,
            tickets=tickets,
            devices=devices,
            suppressions=suppressions,
            signer=signer,
            sns=SnsSignatures(feedback_topics),
            resends=PostgresResends(log, pool),
        ),
        dispatcher=dispatcher,
        ddl=[
            mailbox_table.DDL,
            notifications_tables.DDL,
            suppressions_table.DDL,
            inbox_table.DDL,
            devices_table.DDL,
            tickets_table.DDL,
        ],
    )


def notifier_view(conninfo: str, generation: int, apps: Mapping[str, Application[Any]]) -> View:
    """The policy's tracking. A new one starts at the logs' heads: a shop that
    gains notifications does not mail its whole history. The link mails carry on
    from where the users area's old mail policy (``user_emails``) stopped."""
    view = View(view_datastore(conninfo, generation_schema(Notifier.name, generation)))
    view.create_table()
    if all(view.max_tracking_id(name) is None for name in NOTIFIER_LOGS):
        # Marked even at 0 (a fresh database, at `shop migrate`): a view made later
        # would otherwise start at the heads of then, past the first sign-ups.
        for name in NOTIFIER_LOGS:
            head = _previous_mail_position(conninfo) if name == "users" else None
            if head is None:
                head = apps[name].recorder.max_notification_id()
            view.insert_tracking(Tracking(name, head or 0))
    return view


def _previous_mail_position(conninfo: str) -> int | None:
    old = View(view_datastore(conninfo, generation_schema("user_emails", 1)))
    try:
        with old.datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT to_regclass('rm_user_emails_g1.tracking') IS NOT NULL AS found")
            row = cursor.fetchone()
            if not row or not row["found"]:
                return None
        position: int | None = old.max_tracking_id("users")
        return position
    finally:
        old.datastore.close()

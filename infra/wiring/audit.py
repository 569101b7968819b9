"""Tamper evidence, built (ADR 0023): the chain's store in Postgres, the loop that
extends it, the loop that signs its heads, the anchor the settings choose (an
append-only file, or S3 under Object Lock) and the signing key (configured, or
generated once into the data folder in development)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from infra.files.audit_heads import FileHeadAnchor
from infra.postgres import audit_chain
from infra.postgres.audit_chain import PostgresChainStore
from infra.settings import Settings
from infra.wiring.notification_channels import aws_client
from infra.wiring.shared import Pools, open_pools, utc_now
from streams.audit_chain.follower import ChainFollower, HeadSigning
from streams.audit_chain.heads import HeadSigner, SignedHead, new_private_key, private_key
from streams.audit_chain.ports import HeadAnchor
from streams.audit_chain.verification import Verification, verify
from streams.supervision import Supervised

CHAIN_INTERVAL = 1.0
"""Seconds the chain's loop waits once caught up."""
KEY_FILE = "audit-signing.key"
HEADS_FILE = "audit-heads.jsonl"


@dataclass
class Audit:
    store: PostgresChainStore
    follower: ChainFollower
    signing: HeadSigning
    signer: HeadSigner
    anchor: HeadAnchor
    sign_interval: float
    ddl: list[str]
    loops: list[Supervised] = field(default_factory=list)

    def start(self) -> None:
        """The two loops, beside the projections (``Container.start_feed_followers``)."""
        self.stop()
        self.loops = [
            Supervised("audit_chain", self.follower.step, CHAIN_INTERVAL),
            Supervised("audit_signer", self.signing.step, self.sign_interval),
        ]
        for loop in self.loops:
            loop.start()

    def stop(self) -> None:
        for loop in self.loops:
            loop.stop()
        self.loops = []

    def sign(self) -> SignedHead:
        """Hashes what is new, then signs and anchors every head (``shop audit sign``)."""
        self.follower.catch_up()
        return self.signing.sign()

    def verify(self) -> Verification:
        return verify(self.store, self.anchor, self.signer.verifier)


def build(settings: Settings, pools: Pools) -> Audit:
    store = PostgresChainStore(pools.pool)
    signer = HeadSigner(private_key(signing_key(settings)))
    anchor = head_anchor(settings)
    return Audit(
        store=store,
        follower=ChainFollower(store),
        signing=HeadSigning(store, signer, anchor, utc_now),
        signer=signer,
        anchor=anchor,
        sign_interval=settings.audit_sign_interval,
        ddl=[audit_chain.DDL],
    )


def head_anchor(settings: Settings) -> HeadAnchor:
    if settings.audit_anchor == "s3":
        assert settings.audit_s3_bucket is not None  # the settings refuse s3 without one
        # Imported only when chosen: botocore costs every process start-up time.
        from infra.amazon.s3_audit_heads import S3HeadAnchor

        return S3HeadAnchor(
            aws_client(settings, "s3"),
            settings.audit_s3_bucket,
            settings.audit_s3_key,
            timedelta(days=settings.audit_s3_retention_days),
        )
    return FileHeadAnchor(settings.audit_anchor_file or settings.data_dir / HEADS_FILE)


def public_key(settings: Settings) -> str:
    """The public half of the signing key, in base64 (what a head verifies with)."""
    public = private_key(signing_key(settings)).public_key()
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def signing_key(settings: Settings) -> str:
    """The configured key, or (development) one generated once into the data folder,
    readable by its owner only."""
    if settings.audit_signing_key is not None:
        return settings.audit_signing_key.get_secret_value()
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of this data folder made it meanwhile
            return path.read_text().strip()
        with os.fdopen(descriptor, "w") as file:
            file.write(new_private_key())
    return path.read_text().strip()


@contextmanager
def standalone(settings: Settings) -> Iterator[Audit]:
    """The audit area alone, over a pool of its own, its table made: what ``shop
    audit`` needs. No Application is opened and no state is decoded, so verifying
    takes only the database, the anchor and the key (none of the cipher keys)."""
    pools = open_pools(settings)
    try:
        area = build(settings, pools)
        with pools.pool.connection() as conn:
            for ddl in area.ddl:
                conn.execute(ddl)
        yield area
    finally:
        pools.pool.close()

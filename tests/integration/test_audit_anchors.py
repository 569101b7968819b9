"""Where signed heads are anchored, each backend held to one contract (the newest
head comes back as written; nothing before the first), and what only S3 promises:
every head is a version under Object Lock in compliance mode, which cannot be
deleted before its retention date, and a bucket without Object Lock is refused
before a head is written there (moto in server mode, as the other AWS adapters)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.amazon.s3_audit_heads import ObjectLockMissing, S3HeadAnchor
from infra.files.audit_heads import FileHeadAnchor
from infra.settings import Settings
from infra.wiring import audit
from streams.audit_chain.heads import HeadSigner, MalformedHead
from streams.audit_chain.links import Link
from streams.audit_chain.ports import HeadAnchor
from tests.support import moto_server

pytestmark = pytest.mark.integration

SIGNER = HeadSigner(Ed25519PrivateKey.generate())
AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=1)


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server.moto_server() as url:
        yield url


def locked_bucket(url: str) -> str:
    name = f"audit-{datetime.now(UTC):%H%M%S%f}"
    s3 = moto_server.client(url, "s3")
    s3.create_bucket(
        Bucket=name,
        CreateBucketConfiguration={"LocationConstraint": moto_server.REGION},
        ObjectLockEnabledForBucket=True,
    )
    return name


@pytest.fixture(params=["file", "s3"])
def anchor(request: pytest.FixtureRequest, tmp_path: Path) -> HeadAnchor:
    if request.param == "file":
        return FileHeadAnchor(tmp_path / "heads.jsonl")
    url = request.getfixturevalue("moto")
    client = moto_server.client(url, "s3")
    return S3HeadAnchor(client, locked_bucket(url), "audit/head.json", RETENTION)


def test_the_newest_head_comes_back_as_written(anchor: HeadAnchor) -> None:
    assert anchor.latest() is None
    first = SIGNER.sign({"users": Link(1, 1, b"\1" * 32)}, AT)
    second = SIGNER.sign({"users": Link(2, 5, b"\2" * 32), "catalog": Link(1, 3, b"\3" * 32)}, AT)
    anchor.append(first)
    anchor.append(second)
    assert anchor.latest() == second
    SIGNER.verifier.check(second)


def test_a_damaged_file_anchor_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "heads.jsonl"
    anchor = FileHeadAnchor(path)
    anchor.append(SIGNER.sign({"users": Link(1, 1, b"\1" * 32)}, AT))
    with path.open("a") as file:
        file.write('{"version": 1, "logs": \n')
    with pytest.raises(MalformedHead):
        anchor.latest()


def test_the_file_keeps_every_head(tmp_path: Path) -> None:
    path = tmp_path / "heads.jsonl"
    anchor = FileHeadAnchor(path)
    for n in range(1, 4):
        anchor.append(SIGNER.sign({"users": Link(n, n, bytes([n]) * 32)}, AT))
    assert len(path.read_text().splitlines()) == 3
    assert path.stat().st_mode & 0o777 == 0o600


def test_s3_heads_are_locked_versions_that_cannot_be_deleted(moto: str) -> None:
    client = moto_server.client(moto, "s3")
    bucket = locked_bucket(moto)
    anchor = S3HeadAnchor(client, bucket, "audit/head.json", RETENTION)
    head = SIGNER.sign({"users": Link(1, 1, b"\1" * 32)}, datetime.now(UTC))
    anchor.append(head)
    anchor.append(SIGNER.sign({"users": Link(2, 2, b"\2" * 32)}, datetime.now(UTC)))
    versions = client.list_object_versions(Bucket=bucket, Prefix="audit/head.json")["Versions"]
    assert len(versions) == 2
    oldest = min(versions, key=lambda v: v["LastModified"])
    locked = client.head_object(Bucket=bucket, Key="audit/head.json", VersionId=oldest["VersionId"])
    assert locked["ObjectLockMode"] == "COMPLIANCE"
    assert locked["ObjectLockRetainUntilDate"] >= head.signed_at + RETENTION - timedelta(seconds=1)
    with pytest.raises(ClientError) as refused:
        client.delete_object(
            Bucket=bucket,
            Key="audit/head.json",
            VersionId=oldest["VersionId"],
            BypassGovernanceRetention=True,
        )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_a_bucket_without_object_lock_is_refused_before_writing(moto: str) -> None:
    client = moto_server.client(moto, "s3")
    client.create_bucket(
        Bucket="unlocked", CreateBucketConfiguration={"LocationConstraint": moto_server.REGION}
    )
    anchor = S3HeadAnchor(client, "unlocked", "audit/head.json", RETENTION)
    with pytest.raises(ObjectLockMissing):
        anchor.append(SIGNER.sign({"users": Link(1, 1, b"\1" * 32)}, AT))
    assert "Contents" not in client.list_objects_v2(Bucket="unlocked")


def test_the_settings_choose_the_anchor(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = locked_bucket(moto)
    chosen = audit.head_anchor(
        Settings(
            data_dir=tmp_path,
            audit_anchor="s3",
            audit_s3_bucket=bucket,
            aws_endpoint_url=moto,
            aws_region=moto_server.REGION,
        )
    )
    assert isinstance(chosen, S3HeadAnchor) and chosen.where == f"s3://{bucket}/audit/head.json"
    chosen.append(SIGNER.sign({"users": Link(1, 1, b"\1" * 32)}, AT))
    assert chosen.latest() is not None
    default = audit.head_anchor(Settings(data_dir=tmp_path))
    assert isinstance(default, FileHeadAnchor) and default.where == str(
        tmp_path / "audit-heads.jsonl"
    )

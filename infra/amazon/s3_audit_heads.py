"""Signed heads in S3 under Object Lock (production's anchor): each signature is a
new version of one object, written in compliance mode with a retention date, so
no one (the root account included) can delete or overwrite a version before it.
The bucket must have Object Lock on (``infra/aws/audit.tf``): checked before the
first write, since without it a version could be deleted by whoever holds the
task's credentials."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError

from streams.audit_chain.heads import MalformedHead, SignedHead

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

LOCK_MODE: Literal["COMPLIANCE"] = "COMPLIANCE"


class ObjectLockMissing(RuntimeError):
    """The bucket does not lock its objects: an anchor there could be rewritten."""


class S3HeadAnchor:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        retention: timedelta,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._retention = retention
        self._checked = False
        self.where = f"s3://{bucket}/{key}"

    def append(self, head: SignedHead) -> None:
        if not self._checked:
            self.check_lock()
        self._client.put_object(
            Bucket=self._bucket,
            Key=self._key,
            Body=head.to_json().encode(),
            ContentType="application/json",
            ObjectLockMode=LOCK_MODE,
            ObjectLockRetainUntilDate=head.signed_at + self._retention,
            ChecksumAlgorithm="SHA256",
        )

    def latest(self) -> SignedHead | None:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        body = answer["Body"].read()
        try:
            return SignedHead.from_json(body.decode())
        except UnicodeDecodeError as error:
            raise MalformedHead(f"{self.where} is not text") from error

    def check_lock(self) -> None:
        """Raises ``ObjectLockMissing`` unless the bucket has Object Lock on."""
        try:
            answer = self._client.get_object_lock_configuration(Bucket=self._bucket)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code != "ObjectLockConfigurationNotFoundError":
                raise
            answer = {"ObjectLockConfiguration": {}}  # type: ignore[typeddict-item]
        if answer["ObjectLockConfiguration"].get("ObjectLockEnabled") != "Enabled":
            raise ObjectLockMissing(
                f"bucket {self._bucket} has no Object Lock: audit heads there could be deleted"
            )
        self._checked = True

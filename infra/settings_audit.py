"""The tamper-evidence settings (docs/adr/0023-audit-chain.md): the key that signs
the hash chain's heads and the anchor they are written to. Part of
``infra.settings.Settings``, which checks the key (its rule depends on the
environment)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings


class AuditSettings(BaseSettings):
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 private key (32 bytes in base64) signing the audit chain's heads; "
        "unset in development: generated into data_dir/audit-signing.key; required in production",
    )
    audit_anchor: Literal["file", "s3"] = Field(
        default="file",
        description="where signed heads are written: file (append-only, SHOP_AUDIT_ANCHOR_FILE) "
        "or s3 (SHOP_AUDIT_S3_BUCKET, a bucket with Object Lock)",
    )
    audit_anchor_file: Path | None = Field(
        default=None,
        description="the append-only file of signed heads; unset: data_dir/audit-heads.jsonl",
    )
    audit_s3_bucket: str | None = Field(default=None, description="bucket with Object Lock on")
    audit_s3_key: str = Field(
        default="audit/head.json", description="the object each head versions"
    )
    audit_s3_retention_days: int = Field(
        default=2555, ge=1, le=36500, description="compliance-mode retention of each signed head"
    )
    audit_sign_interval: float = Field(
        default=300.0,
        gt=0,
        description="seconds between signatures of the chain's heads (if moved)",
    )

    @model_validator(mode="after")
    def _s3_anchor_has_a_bucket(self) -> Self:
        if self.audit_anchor == "s3" and not self.audit_s3_bucket:
            raise ValueError("SHOP_AUDIT_ANCHOR=s3 needs SHOP_AUDIT_S3_BUCKET")
        return self

"""The audit chain's settings: production refuses to start without a signing key
(or with one that is no key); elsewhere a bad key is refused and none at all means
one generated once into the data folder, kept for the next start, readable by its
owner only; the S3 anchor needs its bucket."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.settings import Settings
from infra.wiring import audit
from streams.audit_chain.heads import private_key
from tests.support.production import PRODUCTION


def test_production_refuses_to_start_without_a_signing_key() -> None:
    with pytest.raises(ValidationError, match="SHOP_AUDIT_SIGNING_KEY must be set"):
        Settings(**PRODUCTION | {"audit_signing_key": None})


@pytest.mark.parametrize("key", ["not a key!", "AAAA", "A" * 42 + "=="])
def test_a_signing_key_that_is_no_ed25519_key_is_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="SHOP_AUDIT_SIGNING_KEY must be 32"):
        Settings(**PRODUCTION | {"audit_signing_key": key})
    with pytest.raises(ValidationError, match="SHOP_AUDIT_SIGNING_KEY must be 32"):
        Settings(audit_signing_key=key)  # type: ignore[arg-type]


def test_development_generates_a_key_once_into_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    key = audit.signing_key(settings)
    private_key(key)
    assert audit.signing_key(Settings(data_dir=tmp_path)) == key
    assert (tmp_path / audit.KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_a_configured_key_is_used_as_given(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, audit_signing_key=PRODUCTION["audit_signing_key"])
    assert audit.signing_key(settings) == PRODUCTION["audit_signing_key"]
    assert not (tmp_path / audit.KEY_FILE).exists()


def test_the_s3_anchor_needs_a_bucket() -> None:
    with pytest.raises(ValidationError, match="SHOP_AUDIT_S3_BUCKET"):
        Settings(audit_anchor="s3")

"""``SHOP_LOG_FORMAT`` follows the environment unless given; ``SHOP_METRICS_TOKEN`` is
refused when it could be guessed or not sent, without the refusal showing it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from infra.settings import Settings
from tests.support.production import PRODUCTION

SECRET = SecretStr("s" * 48)


def test_logs_are_text_in_development_and_json_in_production(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, secret_key=SECRET).log_format == "text"
    assert Settings(data_dir=tmp_path, **PRODUCTION).log_format == "json"


def test_the_log_format_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_LOG_FORMAT", "json")
    assert Settings(data_dir=tmp_path, secret_key=SECRET).log_format == "json"
    monkeypatch.setenv("SHOP_LOG_FORMAT", "yaml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings(data_dir=tmp_path, secret_key=SECRET)


@pytest.mark.parametrize("token", ["", "short-token", "has a space in it somewhere ok", "é" * 30])
def test_a_weak_or_unsendable_metrics_token_is_refused_unshown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("SHOP_METRICS_TOKEN", token)
    with pytest.raises(ValidationError, match="SHOP_METRICS_TOKEN must be") as refused:
        Settings(data_dir=tmp_path, secret_key=SECRET)
    assert not token or token not in str(refused.value)


def test_a_strong_metrics_token_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_METRICS_TOKEN", "t" * 24)
    token = Settings(data_dir=tmp_path, secret_key=SECRET).metrics_token
    assert token is not None and token.get_secret_value() == "t" * 24

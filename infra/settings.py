"""Every setting, from the environment (prefix ``SHOP_``), with defaults that run
the embedded mode with no configuration at all."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDERS = {"changeme", "change-me", "changethis", "secret", "password", "test", "dev"}
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="Postgres URL; unset: an embedded Postgres in data_dir/pg"
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL for rate limits; unset: in-process (one process only)"
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Signs tokens; unset in development: generated into data_dir"
    )
    encryption_key: SecretStr | None = Field(
        default=None, description="AES key (base64) to encrypt event state at rest"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"

    access_token_minutes: int = Field(default=15, ge=1, le=60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    read_your_writes_timeout: float = Field(default=2.0, gt=0, le=30)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    login_attempts_per_account: int = 10
    login_attempts_per_address: int = 50
    reset_requests_per_account: int = 3
    reset_requests_per_address: int = 20
    rate_window_seconds: float = 60.0

    db_pool_size: int = Field(default=10, ge=1)
    projections: bool = Field(default=True, description="run projections and policies in-process")

    @field_validator("secret_key")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if secret.lower() in _PLACEHOLDERS or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"SHOP_SECRET_KEY must be a random value of at least {MIN_SECRET_LENGTH} "
                "characters, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return value

    @model_validator(mode="after")
    def _production_needs_explicit_secrets(self) -> Settings:
        if self.environment == "production" and (self.secret_key is None or not self.database_url):
            raise ValueError("production needs SHOP_SECRET_KEY and SHOP_DATABASE_URL set")
        return self

    def resolved_secret(self) -> str:
        """The signing secret: configured, or generated once and kept in the data folder
        so that tokens survive a restart of the embedded mode."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()

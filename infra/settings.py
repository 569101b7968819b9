"""Every setting, from the environment (prefix ``SHOP_``), with defaults that run
the embedded mode with no configuration at all. The notifications' and the audit
chain's are declared in parts of their own (``settings_notifications``,
``settings_audit``) that ``Settings`` inherits."""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import ssl
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from infra.settings_audit import AuditSettings
from infra.settings_notifications import NotificationSettings
from infra.settings_safety import (
    audit_key_problem,
    encryption_key_problem,
    secret_key_problem,
    unsafe_in_production,
)
from projections.catalog.search_queries import SEARCH_CANDIDATES

SECRETS_DIR = Path("/run/secrets")
"""Where Docker mounts secrets: a file per setting, named as its variable
(``shop_secret_key``), read when the folder exists; the environment goes first."""
MIN_METRICS_TOKEN = 24


class Settings(NotificationSettings, AuditSettings):
    # A refusal never shows the value given: it may be a secret, and startup errors
    # end up in the logs.
    model_config = SettingsConfigDict(env_prefix="SHOP_", extra="ignore", hide_input_in_errors=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [SecretsSettingsSource(settings_cls, SECRETS_DIR)] if SECRETS_DIR.is_dir() else []
        return (init_settings, env_settings, dotenv_settings, *files)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="Postgres URL; unset: an embedded Postgres in data_dir/pg"
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL for rate limits and the product and search caches; unset: "
        "in-process rate limits (one process only) and no caches",
    )
    product_cache_prefix: str = Field(
        default="eventshop:", description="Prefix of the product cache's Redis keys"
    )
    product_cache_ttl: float = Field(
        default=3600, gt=0, description="Seconds a cached product lives (events invalidate it)"
    )
    search_cache: bool = Field(
        default=True,
        description="With SHOP_REDIS_URL: cache whole search answers in Redis, dropped "
        "when the catalog changes (at most every SHOP_SEARCH_CACHE_REFRESH seconds)",
    )
    search_cache_refresh: float = Field(
        default=1.0,
        gt=0,
        description="Seconds a cached search answer may trail the catalog (OpenSearch's "
        "default refresh interval is the same second)",
    )
    search_cache_ttl: float = Field(
        default=300, gt=0, description="Seconds an unchanged catalog's cached answer lives"
    )
    search_candidates: int = Field(
        default=SEARCH_CANDIDATES,
        ge=100,
        le=1_000_000,
        description="PostgreSQL search: how many matches a search ranks by relevance and "
        "counts for its total and facets (beyond: the total is a lower bound)",
    )
    opensearch_url: str | None = Field(
        default=None,
        description="OpenSearch URL for catalog search; unset: PostgreSQL full-text search",
    )
    opensearch_index: str = Field(
        default="products",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,100}$",
        description="The alias searches read (over indices named <alias>_g<generation>_<n>)",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs tokens; unset in development: generated into data_dir. Weak "
        "(refused): a placeholder or shorter than 32 characters; in production also "
        "fewer than 10 distinct characters",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="AES-GCM key, 16, 24 or 32 bytes in base64, encrypting event state "
        "at rest; required in production",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate chain to serve HTTPS with (with SHOP_TLS_KEY)"
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of SHOP_TLS_CERT")
    public_url: str = Field(
        # After host, port and TLS, which it reads: fields are validated in order.
        default_factory=lambda data: served_url(
            data.get("host", ""), data.get("port", 8000), https=data.get("tls_cert") is not None
        ),
        description="Where people reach the API (the links in mail); unset: "
        "http(s)://<host>:<port> of the address served, a wildcard host as this machine",
    )

    log_format: Literal["json", "text"] = Field(
        # After environment, which it reads: fields are validated in order.
        default_factory=lambda data: "json" if data.get("environment") == "production" else "text",
        description="json: one object per line (time, level, logger, message, request_id, "
        "principal; route, method, status, duration_ms on access lines); text: for a terminal. "
        "Default: json in production, text in development",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token /metrics requires; unset: /metrics open in development "
        "and not served at all in production",
    )

    access_token_minutes: int = Field(default=15, ge=1, le=60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    read_your_writes_timeout: float = Field(default=2.0, gt=0, le=30)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    login_attempts_per_account: int = 10
    login_attempts_per_address: int = 50
    reset_requests_per_account: int = 3
    reset_requests_per_address: int = 20
    rate_window_seconds: float = 60.0

    # API protection (infra/entrypoints/protection.py). The route limits are ceilings
    # against floods, above what the benchmarks send from one address (5,000 product
    # or search reads a second): lower them for a real deployment.
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="comma-separated IPs or CIDRs of the proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (the ALB's subnets); unset: nobody's",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated origins (https://shop.example.com) browsers may call "
        "the API from, with credentials; unset: no CORS headers",
    )
    rate_limit_window: int = Field(
        default=10, ge=1, le=3600, description="seconds of the route families' sliding window"
    )
    rate_limit_reads: int = Field(
        default=50_000, ge=1, description="GET and HEAD per window, per user or client address"
    )
    rate_limit_search: int = Field(
        default=50_000, ge=1, description="GET /search per window, per user or client address"
    )
    rate_limit_writes: int = Field(
        default=20_000, ge=1, description="commands per window, per user or client address"
    )
    rate_limit_checkout: int = Field(
        default=2_000, ge=1, description="POST /checkout per window, per user or client address"
    )

    db_pool_size: int = Field(default=10, ge=1)
    db_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="seconds to connect to Postgres, or to wait for a pooled connection: "
        "past it a request answers 503 rather than hang while the database is away",
    )
    db_statement_timeout: float = Field(
        default=10.0, gt=0, description="seconds a query of the read API may run"
    )
    ready_max_stall_seconds: float = Field(
        default=60.0,
        gt=0,
        description="GET /health/ready answers 503 once a projection has stood still behind "
        "its log for this long (or has open dead letters)",
    )
    projections: bool = Field(default=True, description="run projections and policies in-process")
    workers: int = Field(
        default=1,
        ge=1,
        description="HTTP worker processes of `shop run`; more than one needs SHOP_REDIS_URL",
    )
    keep_alive_seconds: float = Field(
        default=75.0,
        gt=0,
        le=3600,
        description="how long an idle HTTP connection is kept open (uvicorn's own 5 s is "
        "shorter than a shopper's pause between pages, so nearly every page paid a new "
        "connection; above a load balancer's idle timeout, 60 s on an ALB, so that the "
        "balancer, not the server, closes first)",
    )

    otel_exporter: Literal["none", "otlp", "console"] = Field(
        default="none",
        description="OpenTelemetry spans: none (no tracing), otlp (to OTEL_EXPORTER_OTLP_"
        "ENDPOINT, default http://localhost:4318), console (stdout)",
    )

    # Scaled mode (docs/adr/0010-kafka-workers.md): the relay and the stream workers.
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="host:port[,host:port]")
    kafka_topic_prefix: str = Field(default="eventshop.", description="topic = prefix + log name")
    kafka_partitions: int = Field(default=6, ge=1, description="for topics the relay creates")
    kafka_replication_factor: int = Field(default=1, ge=1, description="3 on MSK")
    kafka_idempotent_producer: bool = Field(
        default=True, description="on for MSK; off for brokers without InitProducerId (Tansu)"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL"] = Field(
        default="PLAINTEXT", description="SSL: TLS with the system's CA certificates (MSK)"
    )
    kafka_request_timeout: float = Field(default=30.0, gt=0, description="per produce attempt")
    relay_batch_size: int = Field(default=500, ge=1)
    relay_max_in_flight: int = Field(default=4, ge=1, description="batches awaiting delivery")
    relay_poll_interval: float = Field(default=0.02, gt=0)
    relay_max_failures: int = Field(default=5, ge=1, description="in a row, then the relay exits")
    worker_group: str = "eventshop-workers"
    worker_gap_timeout: float = Field(
        default=30.0, gt=0, description="a gap Kafka has not filled by then is read from the store"
    )
    worker_max_held: int = Field(
        default=50_000,
        ge=1,
        description="events held behind a gap at most (memory), then it is read from the store",
    )
    worker_session_timeout: float = Field(default=10.0, gt=0)
    worker_fetch_wait: float = Field(
        default=0.05,
        gt=0,
        le=1.5,
        description="longest a fetch waits for data; Kafka answers as soon as data arrives, "
        "brokers that hold a fetch for the whole wait (Tansu) add it to the lag",
    )

    # Payments and checkout (docs/adr/0011-checkout-saga.md).
    payment_gateway: Literal["sandbox", "stripe", "paypal"] = Field(
        default="sandbox",
        description="sandbox: Stripe's test tokens, no network, no account (refused in production)",
    )
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, description="whsec_...: enables POST /webhooks/stripe"
    )
    stripe_return_url: str | None = Field(
        default=None, description="where Stripe sends a shopper back after authentication"
    )
    stripe_api_base: str | None = Field(
        default=None, description="another Stripe API address (tests: localstripe)"
    )
    paypal_client_id: str | None = None
    paypal_secret: SecretStr | None = None
    paypal_base_url: str = "https://api-m.sandbox.paypal.com"
    return_window_days: int = Field(default=30, ge=0, le=365)
    checkout_saga_partitions: int = Field(
        default=4, ge=1, le=64, description="checkout sagas running side by side (threads)"
    )
    payment_authentication_timeout: float = Field(
        default=15 * 60,
        gt=0,
        description="seconds an order waits for the shopper's 3-D Secure authentication "
        "before it is rejected (the authorization voided, the stock released)",
    )

    @field_validator("trusted_proxies", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """``a, b`` or a JSON list (``["a", "b"]``, as settings dumped to variables are)."""
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        """Credentials are allowed for every listed origin, so each must be one exact
        origin: never ``*`` (any site could then act with a shopper's credentials)."""
        for origin in origins:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or "*" in origin
                or origin != f"{parts.scheme}://{parts.netloc}"
                or parts.username is not None
            ):
                raise ValueError(
                    f"SHOP_CORS_ORIGINS: {origin!r} is not an origin such as "
                    "https://shop.example.com (scheme, host, optional port; no path, no *)"
                )
        return origins

    # Safe configuration (infra/settings_safety.py): a bad key is refused in every
    # environment; production names it among every other unsafe setting instead.
    @field_validator("secret_key", "encryption_key")
    @classmethod
    def _refuse_bad_keys(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None or info.data.get("environment") == "production":
            return value
        key = value.get_secret_value()
        problem = (
            secret_key_problem(key, production=False)
            if info.field_name == "secret_key"
            else encryption_key_problem(key)
        )
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        problems = unsafe_in_production(self) if self.environment == "production" else []
        if problems:
            raise ValueError(
                "production refuses to start with unsafe settings:\n- " + "\n- ".join(problems)
            )
        return self

    @field_validator("metrics_token")
    @classmethod
    def _bearer_token(cls, value: SecretStr | None) -> SecretStr | None:
        """Long enough not to be guessed, and sendable as it is in a header."""
        if value is not None and not re.fullmatch(
            rf"[\x21-\x7e]{{{MIN_METRICS_TOKEN},}}", value.get_secret_value()
        ):
            raise ValueError(
                f"SHOP_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} visible ASCII "
                "characters without spaces, e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a port out of range or not a number
        except ValueError as error:
            raise ValueError(f"SHOP_PUBLIC_URL is not a URL: {error}") from error
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                "SHOP_PUBLIC_URL must be an http(s) URL without credentials, query or "
                "fragment, e.g. https://shop.example.com or https://example.com/shop"
            )
        return value.rstrip("/")  # the links append their own /path

    @model_validator(mode="after")
    def _tls_pair_loads(self) -> Settings:
        """Checked here, so a bad pair stops the start with its reason rather than in
        uvicorn's worker after the database was opened."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("SHOP_TLS_CERT and SHOP_TLS_KEY go together: set both or neither")
        if self.tls_cert is not None and self.tls_key is not None:
            try:
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                    self.tls_cert, self.tls_key
                )
            except (OSError, ssl.SSLError) as error:
                raise ValueError(
                    f"SHOP_TLS_CERT / SHOP_TLS_KEY do not load as a certificate and its key: "
                    f"{error}"
                ) from error
        return self

    @model_validator(mode="after")
    def _audit_key(self) -> Settings:
        """After the fields: the rule depends on the environment, a field of this class
        validated after those of the parts above."""
        key = self.audit_signing_key
        problem = None if key is None else audit_key_problem(key.get_secret_value())
        if problem and self.environment != "production":  # production lists it
            raise ValueError(problem)
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


def served_url(host: str, port: int, https: bool = False) -> str:
    """``http(s)://host:port`` of a served address; a wildcard host (every interface) as
    this machine's loopback, which reaches it."""
    scheme = "https" if https else "http"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a name (or nothing)
        return f"{scheme}://{host or '127.0.0.1'}:{port}"
    if address.is_unspecified:
        return f"{scheme}://{'127.0.0.1' if address.version == 4 else 'localhost'}:{port}"
    return f"{scheme}://{address if address.version == 4 else f'[{address}]'}:{port}"

"""The API protection's settings as the environment gives them (comma-separated
lists), what they refuse, and the table that puts each route in a family."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.entrypoints.route_limits import family_of
from infra.settings import Settings


def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(f"SHOP_{name}", value)
    return Settings(data_dir=tmp_path)


def test_nobody_is_trusted_and_no_origin_allowed_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = settings(tmp_path, monkeypatch)
    assert chosen.trusted_proxies == []
    assert chosen.cors_origins == []


def test_trusted_proxies_are_addresses_and_networks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = settings(tmp_path, monkeypatch, TRUSTED_PROXIES="10.0.0.0/24, 10.0.1.0/24,::1")
    assert chosen.trusted_proxies == [
        ipaddress.ip_network("10.0.0.0/24"),
        ipaddress.ip_network("10.0.1.0/24"),
        ipaddress.ip_network("::1/128"),
    ]


def test_lists_also_come_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As settings dumped to variables carry them (the scaled roles' environment)."""
    chosen = settings(tmp_path, monkeypatch, TRUSTED_PROXIES='["10.0.0.0/24"]', CORS_ORIGINS="[]")
    assert chosen.trusted_proxies == [ipaddress.ip_network("10.0.0.0/24")]
    assert chosen.cors_origins == []


@pytest.mark.parametrize("value", ["alb.internal", "10.0.0.0/33", "10.0.0.1/24"])
def test_a_proxy_that_is_no_address_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        settings(tmp_path, monkeypatch, TRUSTED_PROXIES=value)


def test_cors_origins_are_listed_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = settings(
        tmp_path, monkeypatch, CORS_ORIGINS="https://shop.example.com,http://localhost:5173"
    )
    assert chosen.cors_origins == ["https://shop.example.com", "http://localhost:5173"]


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "https://*.example.com",
        "https://shop.example.com/",
        "https://shop.example.com/app",
        "shop.example.com",
        "ftp://shop.example.com",
        "https://user@shop.example.com",
    ],
)
def test_any_origin_or_what_is_no_origin_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Credentials are allowed for every listed origin: a wildcard would give them to
    any site, in every environment."""
    with pytest.raises(ValidationError, match="SHOP_CORS_ORIGINS"):
        settings(tmp_path, monkeypatch, CORS_ORIGINS=value)


@pytest.mark.parametrize(
    ("method", "path", "family"),
    [
        ("GET", "/products/1", "reads"),
        ("HEAD", "/categories", "reads"),
        ("GET", "/search", "search"),
        ("GET", "/searching", "reads"),
        ("POST", "/search", "writes"),
        ("POST", "/checkout", "checkout"),
        ("POST", "/cart/lines", "writes"),
        ("DELETE", "/me/devices/1", "writes"),
        ("GET", "/health", None),
        ("GET", "/metrics", None),
        ("POST", "/webhooks/stripe", None),
        ("POST", "/webhooks/ses-feedback", None),
    ],
)
def test_each_route_has_one_family(method: str, path: str, family: str | None) -> None:
    assert family_of(method, path) == family

"""SHOP_PUBLIC_URL: unset, the address served; set, an http(s) URL without a trailing
slash (the mail links append their own path)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.settings import Settings


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 8123, "http://127.0.0.1:8123"),
        ("0.0.0.0", 8000, "http://127.0.0.1:8000"),  # every interface: reached on loopback
        ("::", 8000, "http://localhost:8000"),
        ("::1", 9000, "http://[::1]:9000"),
        ("shop.internal", 80, "http://shop.internal:80"),
    ],
)
def test_the_default_follows_the_address_served(host: str, port: int, expected: str) -> None:
    assert Settings(host=host, port=port).public_url == expected


def test_a_set_url_wins_without_its_trailing_slash() -> None:
    settings = Settings(port=8123, public_url="https://shop.example.com/store/")
    assert settings.public_url == "https://shop.example.com/store"


@pytest.mark.parametrize(
    "url",
    [
        "shop.example.com",
        "ftp://shop.example.com",
        "https://",
        "https://u:p@shop.example.com",
        "https://shop.example.com/?a=1",
        "https://shop.example.com/#top",
        "http://shop:99999",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        Settings(public_url=url)

"""moto in server mode on a free loopback port: boto3 clients talk to it over HTTP
as they would to AWS, and what it 'sent' is read back from its data endpoint."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import httpx
from botocore.config import Config
from moto.server import ThreadedMotoServer

REGION = "eu-west-1"


@contextmanager
def moto_server() -> Iterator[str]:
    """The server's base URL while the block runs."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def client(url: str, service: str, config: Config | None = None) -> Any:
    """A boto3 client on the server (moto takes any credentials)."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def sent(url: str, service: str, model: str) -> list[dict[str, Any]]:
    """What the server holds of one model (``ses``/``RawMessage``, ``sns``/``SMS``,
    ``sns``/``PlatformEndpoint``); a service nothing was sent to yet is absent from
    moto's dump, which is an empty list here."""
    data: dict[str, Any] = httpx.get(f"{url}/moto-api/data.json").raise_for_status().json()
    found: list[dict[str, Any]] = data.get(service, {}).get(model, [])
    return found


def reset(url: str) -> None:
    httpx.post(f"{url}/moto-api/reset").raise_for_status()

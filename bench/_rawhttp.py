"""A minimal asyncio HTTP/1.1 client for load generation: a fixed pool of
keep-alive connections, requests written as bytes, responses read by
Content-Length (or chunks). It does a small fraction of httpx's work per request,
which matters when the generator shares two cores with the server it measures
(see bench/README.md for the figures)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class ServerClosed(ConnectionError):
    """The server closed a kept-alive connection before answering."""


class RawHttp:
    def __init__(self, host: str, port: int, connections: int) -> None:
        self._host = host
        self._port = port
        self._size = connections
        self._pool: asyncio.Queue[_Connection | None] = asyncio.Queue()
        self.reconnects = 0

    async def __aenter__(self) -> RawHttp:
        for _ in range(self._size):
            self._pool.put_nowait(None)  # connected on first use
        return self

    async def __aexit__(self, *exc: object) -> None:
        while not self._pool.empty():
            conn = self._pool.get_nowait()
            if conn is not None:
                conn.close()

    def encode(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(payload)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        return await self.send(self.encode(method, path, body, headers))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send one encoded request on a free connection (waiting, in order, for one):
        the status and the body."""
        conn = await self._pool.get()
        try:
            for attempt in range(2):
                if conn is None:
                    reader, writer = await asyncio.open_connection(self._host, self._port)
                    conn = _Connection(reader, writer)
                try:
                    conn.writer.write(request)
                    status, body, keep = await self._read(conn.reader)
                except ServerClosed:
                    # An idle connection the server had closed: the request was not
                    # read, so sending it again on a new connection is safe.
                    conn.close()
                    conn = None
                    self.reconnects += 1
                    if attempt:
                        raise
                    continue
                except BaseException:
                    conn.close()
                    conn = None
                    raise
                if not keep:
                    conn.close()
                    conn = None
                return status, body
            raise AssertionError("unreachable")
        finally:
            self._pool.put_nowait(conn)

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as error:
            partial = getattr(error, "partial", b"")
            if not partial:
                raise ServerClosed("connection closed before an answer") from error
            raise
        status = int(head[9:12])
        lower = head.lower()
        keep = b"\r\nconnection: close" not in lower
        marker = lower.find(b"\r\ncontent-length:")
        if marker >= 0:
            end = lower.index(b"\r\n", marker + 2)
            length = int(lower[marker + 17 : end])
            return status, await reader.readexactly(length), keep
        if b"\r\ntransfer-encoding: chunked" in lower:
            chunks: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return status, b"".join(chunks), keep
                chunks.append((await reader.readexactly(size + 2))[:-2])
        return status, b"", keep


class HttpxClient:
    """The same interface over ``httpx.AsyncClient`` (``--client httpx``)."""

    def __init__(self, base_url: str, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0)
        self.reconnects = 0

    async def __aenter__(self) -> HttpxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        r = await self._client.request(method, path, json=body, headers=headers)
        return r.status_code, r.content

"""A redis-server of the test's own (the Debian package's binary) on a free loopback
port, to stop and start under the app, optionally speaking TLS only."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.certificates import Pki
from tests.support.polling import eventually
from tests.support.server import answers, free_port


@dataclass
class OwnRedis:
    port: int = field(default_factory=free_port)
    tls: Pki | None = None
    """With a PKI: TLS on the port (no plain port), the server's certificate signed
    by its CA; clients are not asked for one."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def tls_url(self, trusted_ca: Path) -> str:
        """A ``rediss://`` URL whose client verifies the server against ``trusted_ca``."""
        return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={trusted_ca}"

    def start(self) -> None:
        command = ["redis-server", "--bind", "127.0.0.1", "--save", ""]
        if self.tls is None:
            command += ["--port", str(self.port)]
        else:
            command += [
                *("--port", "0", "--tls-port", str(self.port)),
                *("--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)),
                *("--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"),
            ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        eventually(lambda: answers(self.port), f"redis-server on {self.port}", timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self) -> redis.Redis:
        """A client of the test's, over TLS when the server speaks it."""
        if self.tls is None:
            return redis.Redis.from_url(self.url)
        return redis.Redis.from_url(self.tls_url(self.tls.ca))

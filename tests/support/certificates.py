"""Certificates a test makes for itself: a CA, and what it signs (a server's for an
IP address, a client's), written as PEM files with the owner and modes TLS servers
and libpq insist on."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def issue(name: str, issuer: Issued | None, *, ca: bool = False, ip: str | None = None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip is not None:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(cert, key)


def write(issued: Issued, cert_path: Path, key_path: Path | None, owner: int | None = None) -> None:
    cert_path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    if owner is not None:
        os.chown(cert_path, owner, -1)
    if key_path is not None:
        key_path.write_bytes(
            issued.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)  # libpq and Postgres refuse a key others can read
        if owner is not None:
            os.chown(key_path, owner, -1)


@dataclass(frozen=True)
class Pki:
    """A test CA, another CA that signed nothing here, and a server certificate for
    127.0.0.1 that the first signed, with its key."""

    ca: Path
    other_ca: Path
    cert: Path
    key: Path


def make_pki(folder: Path) -> Pki:
    ca, other = issue("test CA", None, ca=True), issue("another CA", None, ca=True)
    pki = Pki(folder / "ca.pem", folder / "other-ca.pem", folder / "cert.pem", folder / "key.pem")
    write(ca, pki.ca, None)
    write(other, pki.other_ca, None)
    write(issue("127.0.0.1", ca, ip="127.0.0.1"), pki.cert, pki.key)
    return pki

"""``shop audit``: ``verify`` checks every log against the last signed head of the
hash chain (ADR 0023) and names the first position that no longer matches (exit 1);
``sign`` hashes what is new and signs the heads now; ``new-key`` prints a fresh
signing key, ``public-key`` the key a head is verified with."""

from __future__ import annotations

import typer
from rich.console import Console

from infra.entrypoints.cli_settings import load_settings
from infra.entrypoints.logs import configure_logging
from infra.settings import Settings
from infra.wiring import audit
from streams.audit_chain.heads import ForgedHead, MalformedHead, new_private_key
from streams.audit_chain.verification import NoSignedHead

audit_app = typer.Typer(help="Tamper evidence: the hash chain over every log", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)
TAMPERED = 1
"""Exit code: a log no longer matches, or the signed head itself is refused."""
NOTHING_SIGNED = 2


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings.log_format)
    return settings


@audit_app.command()
def verify() -> None:
    """Check every log against the last signed head: its signature first, then every
    record hashed again. Exit 1 naming the log and the first position that no longer
    matches."""
    with audit.standalone(_settings()) as area:
        try:
            result = area.verify()
        except NoSignedHead as error:
            errors.print(str(error), markup=False)
            raise typer.Exit(NOTHING_SIGNED) from None
        except (ForgedHead, MalformedHead) as error:
            errors.print(f"refused: {error}", markup=False)
            raise typer.Exit(TAMPERED) from None
    head = result.head
    console.print(
        f"signed head of {head.signed_at.isoformat()} (key {head.key_id}) at {area.anchor.where}: "
        "signature verified",
        markup=False,
    )
    for finding in result.findings:
        where = "" if finding.position is None else f" at position {finding.position}"
        errors.print(f"TAMPERED: {finding.log}{where}: {finding.problem}", markup=False)
    failed = {finding.log for finding in result.findings}
    for log, signed in sorted(head.logs.items()):
        if log in failed:
            continue
        later = result.unsigned.get(log, 0)
        tail = f"; {later} later records match the stored chain" if later else ""
        console.print(
            f"{log}: {result.checked.get(log, 0)} records match up to position "
            f"{signed.position}{tail}",
            markup=False,
        )
    for log in result.new_logs:
        console.print(f"{log}: not in the signed head yet (checked from the next one)")
    if failed:
        raise typer.Exit(TAMPERED)
    console.print("every log verifies")


@audit_app.command()
def sign() -> None:
    """Hash every new record, then sign every log's head and write it to the anchor."""
    with audit.standalone(_settings()) as area:
        head = area.sign()
    for log, link in sorted(head.logs.items()):
        console.print(f"{log}: {link.seq} records, up to position {link.position}", markup=False)
    console.print(f"signed (key {head.key_id}) and written to {area.anchor.where}", markup=False)


@audit_app.command("new-key")
def new_key() -> None:
    """Print a new Ed25519 signing key for SHOP_AUDIT_SIGNING_KEY (keep it secret)."""
    print(new_private_key())


@audit_app.command("public-key")
def public_key() -> None:
    """Print the public key of the configured signing key (heads verify with it)."""
    print(audit.public_key(_settings()))

"""``shop audit`` as an operator runs it (a subprocess, as the other CLI tests):
nothing to verify before the first signature (exit 2); ``sign`` then ``verify``
succeed on an untouched store; a row changed with SQL fails ``verify`` (exit 1)
naming the log and position; a forged head appended to the anchor is refused
(exit 1); ``new-key`` prints a key the settings accept, ``public-key`` its half."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from infra.settings import Settings
from infra.wiring.process import bootstrap
from streams.audit_chain.heads import HeadSigner, SignedHead, private_key
from tests.conftest import TEST_SECRET
from tests.integration.kafka.workload import Workload
from tests.support.server import clean_env, run_shop

pytestmark = pytest.mark.integration


def test_sign_verify_and_the_tampering_it_names(database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
    )
    container = bootstrap(settings)
    try:
        container.migrate()
        Workload(container).run(2)
    finally:
        container.close()
    env = clean_env() | {
        "SHOP_DATABASE_URL": database_url,
        "SHOP_DATA_DIR": str(data_dir),
        "SHOP_SECRET_KEY": TEST_SECRET,
    }

    nothing = run_shop(env, "audit", "verify")
    assert nothing.returncode == 2, nothing.stdout + nothing.stderr
    assert "shop audit sign" in nothing.stderr

    signed = run_shop(env, "audit", "sign")
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert "catalog:" in signed.stdout and "audit-heads.jsonl" in signed.stdout

    intact = run_shop(env, "audit", "verify")
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "signature verified" in intact.stdout and "every log verifies" in intact.stdout

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT notification_id FROM catalog_events ORDER BY notification_id OFFSET 2 LIMIT 1"
        ).fetchone()
        assert row is not None
        target = int(row[0])
        conn.execute(
            "UPDATE catalog_events SET state = state || '\\x00'::bytea WHERE notification_id = %s",
            (target,),
        )
    tampered = run_shop(env, "audit", "verify")
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert f"TAMPERED: catalog at position {target}" in tampered.stderr

    heads = data_dir / "audit-heads.jsonl"
    genuine = SignedHead.from_json(heads.read_text().splitlines()[-1])
    key = run_shop(env, "audit", "new-key").stdout.strip()
    forged = HeadSigner(private_key(key)).sign(genuine.logs, genuine.signed_at)
    with heads.open("a") as file:
        file.write(forged.to_json() + "\n")
    refused = run_shop(env, "audit", "verify")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "refused:" in refused.stderr and "does not verify" in refused.stderr

    assert Settings(audit_signing_key=key).audit_signing_key is not None  # type: ignore[arg-type]
    public = run_shop(env | {"SHOP_AUDIT_SIGNING_KEY": key}, "audit", "public-key")
    assert public.returncode == 0, public.stderr
    assert len(public.stdout.strip()) == 44  # 32 bytes in base64

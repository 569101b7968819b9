"""The audit chain in a real ``shop run``: its two loops run beside the projections
and show on ``/health``; what the shop writes over HTTP is hashed and signed into
the data folder's anchor without anyone asking, and ``shop audit verify`` (another
process, on the same database) finds every log intact, then names a row changed
behind the shop's back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from streams.audit_chain.heads import SignedHead
from tests.support.polling import eventually
from tests.support.server import running_server
from tests.support.users_client import STRONG_PASSWORD, register, unique_email

pytestmark = pytest.mark.e2e


def test_shop_run_keeps_and_signs_the_chain(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "shop"
    with (
        running_server(make_database(), data_dir, {"SHOP_AUDIT_SIGN_INTERVAL": "0.5"}) as server,
        server.client() as client,
    ):
        loops = {loop["name"]: loop for loop in client.get("/health").json()["loops"]}
        assert loops["audit_chain"]["running"] and loops["audit_signer"]["running"]
        answer = register(client, unique_email("chained"), STRONG_PASSWORD, "Chained Shopper")
        assert answer.status_code == 201, answer.text
        with psycopg.connect(server.database_url) as conn:
            row = conn.execute("SELECT max(notification_id) FROM users_events").fetchone()
        assert row is not None
        head = int(row[0])
        heads = data_dir / "audit-heads.jsonl"

        def signed_up_to_head() -> bool:
            if not heads.exists():
                return False
            latest = SignedHead.from_json(heads.read_text().splitlines()[-1])
            return "users" in latest.logs and latest.logs["users"].position >= head

        eventually(signed_up_to_head, "the users log hashed and signed up to its head")
        intact = server.shop("audit", "verify")
        assert intact.returncode == 0, intact.stdout + intact.stderr
        assert "every log verifies" in intact.stdout
        with psycopg.connect(server.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE users_events SET state = state || '\\x00'::bytea "
                "WHERE notification_id = %s",
                (head,),
            )
        tampered = server.shop("audit", "verify")
        assert tampered.returncode == 1, tampered.stdout + tampered.stderr
        assert f"TAMPERED: users at position {head}" in tampered.stderr

"""``shop run`` in production with unsafe settings exits before it serves: a non-zero
exit with every offending setting named, and the port never bound."""

from __future__ import annotations

import socket

from tests.support.production import PRODUCTION, as_environment
from tests.support.server import clean_env, free_port, run_shop


def test_shop_run_refuses_unsafe_production_settings_before_binding_its_port() -> None:
    port = free_port()
    unsafe = PRODUCTION | {"payment_gateway": "sandbox", "encryption_key": None}
    env = clean_env() | as_environment({k: v for k, v in unsafe.items() if v is not None})
    # The port is held here: had `shop run` got as far as binding it, it would say so.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        refused = run_shop(env, "run", "--port", str(port), timeout=60)
    output = refused.stdout + refused.stderr
    assert refused.returncode == 2, output
    assert "production refuses to start with unsafe settings" in refused.stderr, output
    assert "SHOP_PAYMENT_GATEWAY" in refused.stderr and "SHOP_ENCRYPTION_KEY" in refused.stderr
    assert "SHOP_NOTIFY_EMAIL" not in output  # ses: accepted
    assert "address already in use" not in output.lower() and "Uvicorn" not in output

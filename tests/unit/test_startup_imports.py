"""Every ``shop`` process imports the CLI and the HTTP app: the adapters that only a
configured deployment uses (OpenSearch, AWS, Web Push, the OTLP exporter) are
imported where they are chosen, since each costs a process up to a second of CPU at
start-up, and tests and operators start hundreds of them."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = ("opensearchpy", "boto3", "botocore", "pywebpush", "aiohttp", "opentelemetry.exporter")


def test_the_entry_points_import_no_optional_adapter() -> None:
    script = (
        "import sys, infra.entrypoints.cli, infra.entrypoints.http\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules if m.startswith({OPTIONAL!r})}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"

"""The deployment files, checked offline (Docker does not run here, and Terraform's
own ``validate`` needs the AWS provider from the network):

- docker-compose.yml against the Compose Specification's JSON schema
  (check-jsonschema's vendored copy), plus what a schema cannot know: every role
  runs a real ``shop`` command, with settings this code reads, and everything
  others wait on has a health check;
- infra/aws/*.tf parsed as HCL: every reference resolves, each managed service the
  scaled mode needs is there, and the tasks get only settings this code reads.
  (``.ci/run`` also runs checkov's static analysis over them.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from typer.testing import CliRunner

from infra.entrypoints import health
from infra.entrypoints.cli import app
from infra.settings import Settings
from tests.support.production import AUDIT_SIGNING_KEY, ENCRYPTION_KEY, STRONG_SECRET

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
TERRAFORM = ROOT / "infra" / "aws"
ROLES = ("write-api", "read-api", "relay", "worker")
_SHOP_SETTING = re.compile(r"^SHOP_([A-Z0-9_]+)$")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _known_setting(variable: str) -> bool:
    match = _SHOP_SETTING.match(variable)
    return match is not None and match[1].lower() in Settings.model_fields


def _assert_shop_command(command: list[str]) -> None:
    """``shop ...`` parses: the command path exists and takes these options."""
    assert command[0] == "shop", command
    result = CliRunner().invoke(app, [*command[1:], "--help"])
    assert result.exit_code == 0, (command, result.output)


def test_compose_file_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_every_role_with_real_commands_and_settings() -> None:
    services = _compose()["services"]
    for role in ROLES:
        assert role in services, role
    for name, service in services.items():
        if "command" in service and service["command"][0] == "shop":
            _assert_shop_command(service["command"])
        for variable in service.get("environment", {}):
            if variable.startswith("SHOP_"):
                assert _known_setting(variable), f"{name}: {variable} is not a setting"
    for store in ("postgres", "redis", "kafka", "opensearch"):
        assert store in services, store


def _secret_settings() -> set[str]:
    """The settings that hold secrets (SecretStr): never a plain value in a file here."""
    return {
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }


def test_compose_settings_are_accepted_in_production() -> None:
    service = _compose()["services"]["write-api"]
    settings = {k.removeprefix("SHOP_").lower(): v for k, v in service["environment"].items()}
    # What the secret files hold, as the operator makes them (the compose file's header).
    files = {
        "secret_key": STRONG_SECRET,
        "encryption_key": ENCRYPTION_KEY,
        "stripe_api_key": "sk_test_x",
        "audit_signing_key": AUDIT_SIGNING_KEY,
        "database_url": "postgresql://postgres:pw@postgres:5432/eventshop"
        "?sslmode=verify-full&sslrootcert=/tls/server.crt",
    }
    assert {f"shop_{name}" for name in files} == set(service["secrets"])
    assert Settings(**settings | files).environment == "production"


def test_compose_passes_every_secret_as_a_file() -> None:
    compose = _compose()
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            assert not (_known_setting(variable) and variable[5:].lower() in _secret_settings()), (
                f"{name}: {variable} is a secret: pass it as a compose secret"
            )
        assert "POSTGRES_PASSWORD" not in service.get("environment", {}), name
    files = {secret["file"] for secret in compose["secrets"].values()}
    assert all(file.startswith("./secrets/") for file in files), files
    assert "secrets/" in (ROOT / ".gitignore").read_text().splitlines()


def test_compose_health_checks_guard_every_dependency() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}"
    for role in ROLES:
        check = services[role]["healthcheck"]["test"]
        if check[1] == "shop":
            _assert_shop_command(check[1:])


# --- Terraform ---------------------------------------------------------------------------


def _unquote(name: str) -> str:
    return name.strip('"')


def _terraform() -> tuple[str, dict[str, list[Any]]]:
    """All .tf text, and the parsed top-level blocks by kind."""
    text = ""
    blocks: dict[str, list[Any]] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        text += path.read_text()
        with path.open() as file:
            for kind, items in hcl2.load(file).items():
                if not kind.startswith("__"):
                    blocks.setdefault(kind, []).extend(items)
    return text, blocks


def _declared(blocks: dict[str, list[Any]], kind: str) -> set[str]:
    """``resource``/``data``: "type.name"; ``variable``: names."""
    names: set[str] = set()
    for item in blocks.get(kind, []):
        for first, body in item.items():
            if kind in ("resource", "data"):
                names |= {f"{_unquote(first)}.{_unquote(second)}" for second in body}
            else:
                names.add(_unquote(first))
    return names


@pytest.fixture(scope="module")
def terraform() -> tuple[str, dict[str, list[Any]]]:
    return _terraform()


def test_every_terraform_reference_resolves(terraform: tuple[str, dict[str, list[Any]]]) -> None:
    text, blocks = terraform
    code = re.sub(r"#[^\n]*", "", text)
    variables = _declared(blocks, "variable")
    assert set(re.findall(r"\bvar\.(\w+)", code)) <= variables
    resources = _declared(blocks, "resource")
    referenced = {
        f"{kind}.{name}" for kind, name in re.findall(r"(?<![\w.\"/])(aws_\w+)\.(\w+)", code)
    }
    assert referenced <= resources, referenced - resources
    data = _declared(blocks, "data")
    assert {f"{k}.{n}" for k, n in re.findall(r"\bdata\.(\w+)\.(\w+)", code)} <= data
    local_names = {name for item in blocks.get("locals", []) for name in item}
    assert set(re.findall(r"\blocal\.(\w+)", code)) <= local_names


def test_terraform_provides_every_managed_service(
    terraform: tuple[str, dict[str, list[Any]]],
) -> None:
    _, blocks = terraform
    types = {name.split(".")[0] for name in _declared(blocks, "resource")}
    assert {
        "aws_msk_cluster",
        "aws_db_instance",
        "aws_opensearch_domain",
        "aws_elasticache_replication_group",
        "aws_ecs_service",
        "aws_lb",
        "aws_appautoscaling_policy",
        "aws_wafv2_web_acl",
        "aws_cloudfront_distribution",
    } <= types
    text = (TERRAFORM / "alb.tf").read_text()
    assert 'protocol          = "HTTPS"' in text
    scaling = (TERRAFORM / "autoscaling.tf").read_text()
    assert "ECSServiceAverageCPUUtilization" in scaling
    assert "SumOffsetLag" in scaling  # workers scale on consumer lag


def test_terraform_tasks_get_real_settings_and_commands(
    terraform: tuple[str, dict[str, list[Any]]],
) -> None:
    _, blocks = terraform
    (environment,) = [item["environment"] for item in blocks["locals"] if "environment" in item]
    for variable in environment:
        assert _known_setting(variable), f"{variable} is not a setting"
        assert variable[5:].lower() not in _secret_settings(), f"{variable}: a plain secret"
    assert _unquote(environment["SHOP_PAYMENT_GATEWAY"]) == "stripe"
    assert "sslmode=require" in environment["SHOP_DATABASE_URL"]
    (services,) = [
        body["default"]
        for item in blocks["variable"]
        for name, body in item.items()
        if _unquote(name) == "services"
    ]
    assert {_unquote(role) for role in services} == set(ROLES)
    for spec in services.values():
        _assert_shop_command([_unquote(part) for part in spec["command"]])


_CHECKED_URL = re.compile(r"http://127\.0\.0\.1:8000(/[\w/]*)")


def test_load_balancers_check_readiness_and_container_runtimes_liveness(
    terraform: tuple[str, dict[str, list[Any]]],
) -> None:
    """The load balancer must stop sending to a task that cannot serve; the container
    runtime must restart only a process that no longer answers (a restart mends no
    database)."""
    _, blocks = terraform
    served = {route.path for route in health.router.routes}  # type: ignore[attr-defined]
    (group,) = [
        body
        for item in blocks["resource"]
        for kind, resources in item.items()
        if _unquote(kind) == "aws_lb_target_group"
        for body in resources.values()
    ]
    assert [_unquote(check["path"]) for check in group["health_check"]] == ["/health/ready"]
    container_checks = [
        (TERRAFORM / "ecs.tf").read_text(),
        " ".join(_compose()["x-http-health"]["test"]),
    ]
    for check in container_checks:
        assert _CHECKED_URL.findall(check) == ["/health/live"], check
    assert {"/health/ready", "/health/live"} <= served


def test_terraform_tasks_take_their_secrets_from_secrets_manager(
    terraform: tuple[str, dict[str, list[Any]]],
) -> None:
    text, _ = terraform
    from_store = set(re.findall(r'\{ name = "(\w+)", valueFrom = ', text))
    # Production's own refusals name these: without them a task would not start.
    assert {"SHOP_SECRET_KEY", "SHOP_ENCRYPTION_KEY", "SHOP_STRIPE_API_KEY", "PGPASSWORD"} <= (
        from_store
    )
    assert all(_known_setting(name) or name == "PGPASSWORD" for name in from_store), from_store
    ecs = (TERRAFORM / "ecs.tf").read_text()
    assert "secrets                = local.secrets" in ecs
    assert "for secret in local.secrets" in ecs  # the execution role may read each one


def test_terraform_tasks_send_their_spans_to_an_xray_collector_sidecar(
    terraform: tuple[str, dict[str, list[Any]]],
) -> None:
    text, blocks = terraform
    (environment,) = [item["environment"] for item in blocks["locals"] if "environment" in item]
    assert _unquote(environment["SHOP_OTEL_EXPORTER"]) == "otlp"
    (otel,) = [item["otel_environment"] for item in blocks["locals"] if "otel_environment" in item]
    # The collector's OTLP/HTTP port, on the task's own loopback.
    assert {k: _unquote(v) for k, v in otel.items()} == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"
    }
    ecs = (TERRAFORM / "ecs.tf").read_text()
    assert "merge(local.environment, local.otel_environment)" in ecs
    assert '"--config=/etc/ecs/ecs-default-config.yaml"' in ecs  # ADOT's: OTLP in, X-Ray out
    (image,) = [
        body["default"]
        for item in blocks["variable"]
        for name, body in item.items()
        if _unquote(name) == "otel_collector_image"
    ]
    assert _unquote(image).startswith("public.ecr.aws/aws-observability/aws-otel-collector:v")
    policy = text.split('resource "aws_iam_role_policy" "task_traces"', 1)[1].split("\n}\n", 1)[0]
    assert "role = aws_iam_role.task.id" in policy
    assert '["xray:PutTraceSegments", "xray:PutTelemetryRecords"]' in policy


# --- the CDN -------------------------------------------------------------------------------

CACHED_CATALOG_READS = {"/products", "/products/{product_id}", "/categories", "/search"}
"""The GET routes whose answers carry public Cache-Control (read_api/http_caching.py)."""


def _resource(blocks: dict[str, list[Any]], kind: str, name: str) -> dict[str, Any]:
    (body,) = [
        resources[f'"{name}"']
        for item in blocks["resource"]
        for found, resources in item.items()
        if _unquote(found) == kind and f'"{name}"' in resources
    ]
    return dict(body)


def _local(blocks: dict[str, list[Any]], name: str) -> Any:
    (value,) = [item[name] for item in blocks["locals"] if name in item]
    return value


def _behaviours(blocks: dict[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The distribution's ordered cache behaviours as CloudFront tries them: (path
    pattern, behaviour), the default last with the pattern ``*``."""
    distribution = _resource(blocks, "aws_cloudfront_distribution", "main")
    ordered: list[tuple[str, dict[str, Any]]] = []
    for block in distribution.get("dynamic", []):
        for kind, body in block.items():
            if _unquote(kind) != "ordered_cache_behavior":
                continue
            (content,) = body["content"]
            assert content["path_pattern"] == "${ordered_cache_behavior.value}"
            paths = _local(blocks, body["for_each"].removeprefix("${local.").removesuffix("}"))
            ordered += [(_unquote(path), content) for path in paths]
    (default,) = distribution["default_cache_behavior"]
    return [*ordered, ("*", default)]


def _matches(pattern: str, path: str) -> bool:
    """CloudFront's path patterns: ``*`` any characters (``/`` included), ``?`` one,
    case-sensitive; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, path) is not None


def _app_routes() -> list[tuple[str, set[str]]]:
    from infra.entrypoints.http import READ_ROUTERS, WRITE_ROUTERS

    routes = [
        route
        for router in (*READ_ROUTERS, *WRITE_ROUTERS, health.router)
        for route in router.routes
    ]
    return [(route.path, set(route.methods)) for route in routes]  # type: ignore[attr-defined]


def test_the_cdn_caches_the_catalogs_public_reads_and_nothing_else(
    terraform: tuple[str, dict[str, list[Any]]],
) -> None:
    _, blocks = terraform
    behaviours = _behaviours(blocks)
    catalog_policy = "${aws_cloudfront_cache_policy.catalog.id}"
    cached: set[str] = set()
    for path, methods in _app_routes():
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        behaviour = next(b for pattern, b in behaviours if _matches(pattern, concrete))
        # Every method reaches the origin, whatever the path (commands share the
        # catalog's paths: POST /products, PUT /products/{id}/price, ...).
        assert {_unquote(m) for m in behaviour["allowed_methods"]} >= methods, path
        if behaviour["cache_policy_id"] == catalog_policy:
            if "GET" in methods:
                cached.add(path)
        else:
            assert behaviour["cache_policy_id"] == "${data.aws_cloudfront_cache_policy.disabled.id}"
            assert behaviour["origin_request_policy_id"] == (
                "${data.aws_cloudfront_origin_request_policy.all_viewer.id}"
            ), path
    assert cached == CACHED_CATALOG_READS
    personal = ("/users/", "/auth/", "/cart", "/checkout", "/orders", "/payments", "/me/")
    others = ("/admin/", "/inventory", "/webhooks/", "/reviews/", "/products/x1/reviews")
    for prefix in (*personal, *others):
        behaviour = next(b for pattern, b in behaviours if _matches(pattern, prefix + "x"))
        assert behaviour["cache_policy_id"] != catalog_policy, prefix
    data = {
        _unquote(kind) + "." + _unquote(name): body
        for item in blocks["data"]
        for kind, named in item.items()
        for name, body in named.items()
    }
    assert _unquote(data["aws_cloudfront_cache_policy.disabled"]["name"]) == (
        "Managed-CachingDisabled"
    )
    assert _unquote(data["aws_cloudfront_origin_request_policy.all_viewer"]["name"]) == (
        "Managed-AllViewer"
    )


def test_the_cdn_keys_catalog_copies_by_credential_and_consistency_token(
    terraform: tuple[str, dict[str, list[Any]]],
) -> None:
    """No cookie, and an entry of its own for each credential and each consistency
    token; the origin's Cache-Control decides (nothing kept without one); errors
    never kept; the origin is the load balancer, over HTTPS, reachable only from
    CloudFront."""
    _, blocks = terraform
    policy = _resource(blocks, "aws_cloudfront_cache_policy", "catalog")
    assert (policy["min_ttl"], policy["default_ttl"]) == (0, 0)
    assert 0 < policy["max_ttl"] <= 60
    (key,) = policy["parameters_in_cache_key_and_forwarded_to_origin"]
    assert _unquote(key["cookies_config"][0]["cookie_behavior"]) == "none"
    assert _unquote(key["query_strings_config"][0]["query_string_behavior"]) == "all"
    (headers,) = key["headers_config"]
    assert _unquote(headers["header_behavior"]) == "whitelist"
    in_key = {_unquote(h) for h in headers["headers"][0]["items"]}
    assert {"Authorization", "X-Consistency-Token", "Origin"} == in_key
    forwarded = _resource(blocks, "aws_cloudfront_origin_request_policy", "catalog")
    assert _unquote(forwarded["cookies_config"][0]["cookie_behavior"]) == "none"
    (extra,) = forwarded["headers_config"]
    extra_headers = {_unquote(h) for h in extra["headers"][0]["items"]}
    # What the catalog's commands need (the bearer travels in the key), no credential.
    assert {"Host", "Content-Type", "Idempotency-Key"} <= extra_headers
    assert not {"Authorization", "X-Cart-Token", "Cookie"} & extra_headers

    distribution = _resource(blocks, "aws_cloudfront_distribution", "main")
    (origin,) = distribution["origin"]
    assert origin["domain_name"] == "${aws_lb.main.dns_name}"
    assert _unquote(origin["custom_origin_config"][0]["origin_protocol_policy"]) == "https-only"
    assert {404, 503} <= set(_local(blocks, "uncached_errors"))
    (errors,) = [b for b in distribution["dynamic"] if '"custom_error_response"' in b]
    assert errors['"custom_error_response"']["content"][0]["error_caching_min_ttl"] == 0
    alb = _resource(blocks, "aws_security_group", "alb")
    assert [rule["prefix_list_ids"] for rule in alb["ingress"]] == [
        ["${data.aws_ec2_managed_prefix_list.cloudfront.id}"]
    ]
    assert all("cidr_blocks" not in rule for rule in alb["ingress"])

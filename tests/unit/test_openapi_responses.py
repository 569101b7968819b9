"""The OpenAPI document describes every answer: each GET operation documents its
2xx body with a schema, and no schema reachable from a 2xx answer (of any method)
is an untyped object, an object with no ``properties`` whose ``additionalProperties``
is true or absent, or ``{}``. A map with typed values (``additionalProperties`` a
typed schema) is typed.

The document is the one the whole app serves (``infra.entrypoints.http.create_app``), built
from a stand-in container: making it opens no connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock

import pytest

from infra.entrypoints.http import create_app
from infra.entrypoints.sandbox_api import router as sandbox_router

_CONSTRAINING = frozenset(
    {"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const", "properties", "items", "not"}
)
"""Keywords that say something of a value; a schema with none of them takes anything."""


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    container = MagicMock()
    container.settings.redis_url = None
    container.settings.opensearch_url = None
    container.settings.max_body_bytes = 1_000_000
    container.product_cache = None
    container.search_cache = None
    container.catalog.collectors.return_value = []
    # The sandbox's own routes are served only when it is the gateway: document them too.
    container.ordering.routers = (sandbox_router,)
    openapi: dict[str, Any] = create_app(container).openapi()
    return openapi


def _answers(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every 2xx response: (operation label, status, response)."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items():
                if status.startswith("2"):
                    yield f"{method.upper()} {path}", status, response


def _untyped(schema: Any, components: dict[str, Any], where: str, seen: set[str]) -> list[str]:
    """Where in ``schema`` (walking ``$ref``s once each) a value is left untyped."""
    if schema is True or schema == {}:
        return [where]
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            return []
        seen.add(ref)
        name = ref.removeprefix("#/components/schemas/")
        return _untyped(components[name], components, f"{where} -> {name}", seen)
    if not _CONSTRAINING & set(schema):
        return [where]
    found: list[str] = []
    types = schema.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    extra = schema.get("additionalProperties")
    if is_object and not schema.get("properties") and extra in (None, True, {}):
        found.append(where)
    for name, sub in schema.get("properties", {}).items():
        found += _untyped(sub, components, f"{where}.{name}", seen)
    if isinstance(extra, dict):
        found += _untyped(extra, components, f"{where}.<additionalProperties>", seen)
    if "items" in schema:
        found += _untyped(schema["items"], components, f"{where}[]", seen)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key, [])):
            found += _untyped(sub, components, f"{where}.{key}[{i}]", seen)
    return found


def test_every_get_documents_its_answer(document: dict[str, Any]) -> None:
    undocumented = [
        f"{label} {status}"
        for label, status, response in _answers(document)
        if label.startswith("GET ")
        and not any("schema" in media for media in response.get("content", {}).values())
    ]
    assert not undocumented, "GET answers without a schema:\n" + "\n".join(undocumented)


def test_no_answer_is_an_untyped_object(document: dict[str, Any]) -> None:
    components = document.get("components", {}).get("schemas", {})
    untyped = [
        spot
        for label, status, response in _answers(document)
        for media_type, media in response.get("content", {}).items()
        if "json" in media_type
        for spot in _untyped(media.get("schema"), components, f"{label} {status}", set())
    ]
    assert not untyped, "untyped values in 2xx answers:\n" + "\n".join(untyped)


def test_the_check_sees_untyped_objects() -> None:
    components = {"Open": {"type": "object", "additionalProperties": True}}
    assert _untyped({"$ref": "#/components/schemas/Open"}, components, "r", set()) == ["r -> Open"]
    assert _untyped({"type": "object"}, {}, "r", set()) == ["r"]
    assert _untyped({"title": "Anything"}, {}, "r", set()) == ["r"]
    nested = {"type": "object", "properties": {"a": {"type": "array", "items": {}}}}
    assert _untyped(nested, {}, "r", set()) == ["r.a[]"]
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert _untyped(counts, {}, "r", set()) == []
    tree = {
        "Node": {
            "type": "object",
            "properties": {
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
            },
        }
    }
    assert _untyped({"$ref": "#/components/schemas/Node"}, tree, "r", set()) == []

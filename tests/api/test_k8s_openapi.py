"""The vendored core-type schemas: generated from the pinned Kubernetes OpenAPI, structural.

``k8s_schemas.json`` is committed so that the operator never needs Go; this test
regenerates it from the pinned ``k8s.io/kubernetes`` module when that module is in
the Go module cache (building the local control plane puts it there) and fails on
any difference. ``e2e/test_admission_parity.py`` compares it with a live API server.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gantry.api import k8s_openapi
from gantry.api.k8s_openapi import (
    CRD_KEYS,
    DEFINITIONS,
    VENDORED,
    GeneratorError,
    extract,
    generate,
    locate_module,
    structural,
)


def test_vendored_file_is_what_the_generator_makes_from_the_pinned_module() -> None:
    try:
        module_dir, version = locate_module()
    except GeneratorError as exc:
        pytest.skip(f"pinned k8s.io/kubernetes not available: {exc}")
    assert VENDORED.read_text() == generate(module_dir, version), (
        f"{VENDORED.name} is stale: run `python -m gantry.api.k8s_openapi` and commit it"
    )


def test_vendored_file_names_its_source_and_every_definition() -> None:
    vendored = json.loads(VENDORED.read_text())
    assert vendored["source"].startswith("k8s.io/kubernetes@v1.")
    assert sorted(vendored["definitions"]) == sorted(DEFINITIONS)


def nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, prop in node.get("properties", {}).items():
        found += nodes(prop, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found += nodes(node[key], f"{path}[{key}]")
    return found


def test_vendored_schemas_are_structural() -> None:
    for name, schema in json.loads(VENDORED.read_text())["definitions"].items():
        for path, node in nodes(schema):
            assert set(node) <= CRD_KEYS, (name, path, set(node) - CRD_KEYS)
            assert "type" in node or node.get("x-kubernetes-int-or-string"), (name, path)
            assert "default" not in node, (name, path)


DOC = {
    "components": {
        "schemas": {
            "T": {
                "type": "object",
                "required": ["q"],
                "properties": {
                    "q": {
                        "allOf": [{"$ref": "#/components/schemas/Q"}],
                        "description": "the field's own words",
                        "default": "1",
                    },
                    "u": {"$ref": "#/components/schemas/U"},
                    "list": {
                        "type": "array",
                        "items": {"allOf": [{"$ref": "#/components/schemas/U"}], "default": {}},
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["k"],
                        "x-kubernetes-patch-strategy": "merge",
                        "x-kubernetes-patch-merge-key": "k",
                    },
                },
            },
            "Q": {
                "description": "a Quantity",
                "oneOf": [{"type": "string"}, {"type": "number"}],
            },
            "U": {
                "type": "object",
                "properties": {"k": {"type": "string", "default": ""}},
                "x-kubernetes-map-type": "atomic",
            },
        }
    }
}


def test_refs_are_inlined_field_words_win_and_only_crd_keys_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(k8s_openapi, "QUANTITY", "Q")
    out = structural({"$ref": "#/components/schemas/T"}, DOC["components"]["schemas"])
    assert out["properties"]["q"] == {"type": "string", "description": "the field's own words"}
    unit = {"type": "object", "properties": {"k": {"type": "string"}}}
    assert out["properties"]["u"] == {**unit, "x-kubernetes-map-type": "atomic"}
    assert out["properties"]["list"] == {
        "type": "array",
        "items": {**unit, "x-kubernetes-map-type": "atomic"},
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["k"],
    }
    assert out["required"] == ["q"]


@pytest.mark.parametrize(
    ("schemas", "message"),
    [
        ({"T": {"$ref": "#/components/schemas/T"}}, "recursive definition T -> T"),
        ({"T": {"$ref": "#/components/schemas/Missing"}}, "unknown definition Missing"),
        ({"T": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}, "unions"),
        ({"T": {"allOf": [{"type": "string"}, {"minLength": 1}]}}, "allOf other than"),
        ({"T": {"$ref": "other.json#/T"}}, r"unsupported \$ref"),
    ],
)
def test_what_cannot_be_structural_is_an_error(schemas: dict[str, Any], message: str) -> None:
    with pytest.raises(GeneratorError, match=message):
        structural({"$ref": "#/components/schemas/T"}, schemas)


def test_extract_reads_each_definition_from_its_document() -> None:
    documents: dict[str, Any] = {}
    for name, doc in DEFINITIONS.items():
        schemas = documents.setdefault(doc, {"components": {"schemas": {}}})["components"]
        schemas["schemas"][name] = {"type": "object", "description": name}
    assert extract(documents) == {
        name: {"type": "object", "description": name} for name in DEFINITIONS
    }
    with pytest.raises(GeneratorError, match=r"no components\.schemas"):
        extract({})

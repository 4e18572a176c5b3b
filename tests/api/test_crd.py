"""The generated CRD: in sync with the models, structural, and usable by kubectl.

``crds/`` is generated; when this test reports drift, regenerate with
``make crd`` (or ``GANTRY_UPDATE_GOLDEN=1 pytest tests/api``) and commit the diff.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gantry.api.crd import CRD_FILENAME, build_crd, crd_yaml, spec_schema
from gantry.api.spec import ModelDeploymentSpec

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / CRD_FILENAME

# Keywords a structural schema may use (apiextensions.k8s.io/v1 JSONSchemaProps).
ALLOWED = {
    "type", "format", "description", "default", "enum", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
    "minProperties", "maxProperties", "uniqueItems", "multipleOf", "required", "properties",
    "items", "additionalProperties", "nullable", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource",
}  # fmt: skip


def schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, prop in node.get("properties", {}).items():
        yield from schema_nodes(prop, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")


def root_schema() -> dict[str, Any]:
    schema: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_crds_dir_matches_the_models() -> None:
    if os.environ.get("GANTRY_UPDATE_GOLDEN") == "1":
        CRD_PATH.write_text(crd_yaml())
    assert CRD_PATH.exists(), f"{CRD_PATH} missing: run `make crd`"
    assert CRD_PATH.read_text() == crd_yaml(), (
        f"{CRD_PATH.relative_to(ROOT)} drifted from operator/gantry/api: run `make crd` "
        "(or GANTRY_UPDATE_GOLDEN=1 pytest tests/api) and commit the result"
    )


def test_crd_identity() -> None:
    crd = build_crd()
    assert crd["metadata"]["name"] == "modeldeployments.serving.gantry.dev"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == ("serving.gantry.dev", "Namespaced")
    assert spec["names"]["shortNames"] == ["md"]
    assert spec["names"]["kind"] == "ModelDeployment"
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }


def resolve(path: str) -> dict[str, Any] | None:
    """The schema node a printer-column jsonPath such as ``.status.canary.weight`` points at."""
    node: dict[str, Any] | None = root_schema()
    for part in path.strip(".").split("."):
        if part == "creationTimestamp":
            return {"type": "string", "format": "date-time"}
        node = (node or {}).get("properties", {}).get(part)
    return node


def test_printer_columns_point_at_real_fields() -> None:
    columns = build_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == [
        "Phase", "Ready", "Version", "Canary", "Weight", "Age", "Model", "Step", "GPUs",
        "Message",
    ]  # fmt: skip
    # What serves, not what was asked for (the spec's version is no column).
    paths = {c["name"]: c["jsonPath"] for c in columns}
    assert paths["Version"] == ".status.stable.modelVersion"
    assert paths["Ready"] == ".status.servers"
    assert paths["Weight"] == ".status.canaryWeight"
    json_type = {"string": "string", "integer": "integer", "date": "string"}
    for column in columns:
        node = resolve(column["jsonPath"])
        assert node is not None, column
        if column["name"] != "Age":
            assert node["type"] == json_type[column["type"]], column
    assert next(c for c in columns if c["name"] == "Step")["priority"] == 1
    # GPUs is wide-only: `kubectl get md` keeps the columns the README shows.
    assert next(c for c in columns if c["name"] == "GPUs")["priority"] == 1


def test_schema_is_structural() -> None:
    for path, node in schema_nodes(root_schema()):
        assert set(node) <= ALLOWED, (path, set(node) - ALLOWED)
        preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
        assert "type" in node or preserve, f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert not isinstance(node.get("additionalProperties"), bool), path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(bound, True), bool), (
                f"{path}.{bound} must be OpenAPI v3.0 bool"
            )
        if node.get("type") == "object" and not preserve and path != ".metadata":
            assert "properties" in node or "additionalProperties" in node, path
        if node.get("type") == "array":
            assert "items" in node, path
    text = crd_yaml()
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "title:", "$defs"):
        assert forbidden not in text


def test_passthroughs_have_real_schemas() -> None:
    # Core types are described field by field (from the Kubernetes OpenAPI), never
    # preserved as unknown: kubectl must be able to name the bad field.
    spec = root_schema()["properties"]["spec"]
    for path, node in schema_nodes(spec):
        assert not node.get("x-kubernetes-preserve-unknown-fields"), path
    placement = spec["properties"]["placement"]["properties"]
    toleration = placement["tolerations"]["items"]["properties"]
    assert toleration["operator"]["enum"] == ["Equal", "Exists"]
    assert toleration["effect"]["enum"] == ["NoSchedule", "PreferNoSchedule", "NoExecute"]
    node_affinity = placement["affinity"]["properties"]["nodeAffinity"]["properties"]
    terms = node_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["properties"][
        "nodeSelectorTerms"
    ]
    assert terms["minItems"] == 1
    requirement = terms["items"]["properties"]["matchExpressions"]["items"]
    assert requirement["required"] == ["key", "operator"]
    assert "Gt" in requirement["properties"]["operator"]["enum"]
    assert placement["nodeSelector"]["additionalProperties"] == {"type": "string", "maxLength": 63}
    assert placement["nodeSelector"]["x-kubernetes-validations"]
    behavior = spec["properties"]["scaling"]["properties"]["behavior"]["properties"]
    policy = behavior["scaleUp"]["properties"]["policies"]["items"]["properties"]
    assert policy["type"]["enum"] == ["Pods", "Percent"]
    assert (policy["periodSeconds"]["minimum"], policy["periodSeconds"]["maximum"]) == (1, 1800)


def test_quantities_are_bounded_before_cel_parses_them() -> None:
    # quantity() in CEL compares with arbitrary precision: a huge exponent must never
    # reach it (the pattern guards the call), and the pattern bounds the exponent.
    resources = root_schema()["properties"]["spec"]["properties"]["resources"]["properties"]
    for name in ("cpu", "memory"):
        node = resources[name]
        (rule,) = node["x-kubernetes-validations"]
        assert rule["rule"].startswith(f"!self.matches(r'{node['pattern']}') || ")
        assert not re.search(node["pattern"], "1e100")
        assert re.search(node["pattern"], "1e18")


def test_descriptions_reach_kubectl_explain() -> None:
    spec = root_schema()["properties"]["spec"]
    gpu = spec["properties"]["resources"]["properties"]["gpu"]
    assert "CPU-only" in gpu["description"], "the field's description wins over the class docstring"
    assert "nvidia.com/gpu" in gpu["properties"]["count"]["description"]


def test_dates_and_conditions() -> None:
    status = root_schema()["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    ltt = conditions["items"]["properties"]["lastTransitionTime"]
    assert ltt["format"] == "date-time"
    # One default only: an object the operator has not seen yet reads as not observed.
    assert status["default"] == {"observedGeneration": 0}
    inner = {k: v for k, v in status.items() if k != "default"}
    assert "default" not in yaml.safe_dump(inner), "the status fields carry no defaults"


def test_every_field_is_described() -> None:
    """``kubectl explain`` documents every field of the spec and the status.

    ``metadata`` is the one exception: the API server refuses anything but its type.
    """
    undescribed = [
        path
        for path, node in schema_nodes(root_schema())
        if path
        and path != ".metadata"
        and not path.endswith(("[]", "{}"))
        and not node.get("description")
    ]
    assert undescribed == []


def all_rules() -> list[tuple[str, dict[str, str]]]:
    return [
        (path, rule)
        for path, node in schema_nodes(root_schema())
        for rule in node.get("x-kubernetes-validations", [])
    ]


def fields_read(rule: str) -> list[str]:
    """Fields a rule reads as ``self.<field>`` (method calls such as ``self.all(`` are not)."""
    return re.findall(r"self\.([A-Za-z_]+)\b(?!\()", rule)


def test_cel_rules_are_carried_and_their_field_paths_exist() -> None:
    rules = all_rules()
    messages = {r["message"] for _, r in rules}
    assert "scaling.minReplicas must be less than or equal to scaling.maxReplicas" in messages
    assert "canary.steps setWeight values must strictly increase" in messages
    assert any("gpu.mig" in m for m in messages)
    nodes = dict(schema_nodes(root_schema()))
    for path, rule in rules:
        # Every field the rule reads as self.<field> exists in the schema of that node.
        for field in fields_read(rule["rule"]):
            assert field in nodes[path].get("properties", {}), (path, field)
        if "fieldPath" in rule:
            assert rule["fieldPath"].lstrip(".") in nodes[path]["properties"], (path, rule)


def test_lists_and_strings_read_by_cel_are_bounded() -> None:
    # The API server estimates a rule's worst-case cost from maxItems/maxLength.
    nodes = dict(schema_nodes(root_schema()))
    for path, rule in all_rules():
        for field in fields_read(rule["rule"]):
            child = nodes[f"{path}.{field}"]
            if child.get("type") == "array":
                assert "maxItems" in child, (path, field)
            if child.get("type") == "string" and "enum" not in child:
                assert "maxLength" in child, (path, field)


def conforms(value: Any, node: dict[str, Any], path: str = "") -> None:
    """A small OpenAPI check: types, enums, bounds and no pruned fields (for defaults)."""
    kind = node.get("type")
    python = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
    }
    if kind:
        assert isinstance(value, python[kind]), (path, value, kind)
    if "enum" in node:
        assert value in node["enum"], path
    if "pattern" in node:
        assert re.search(node["pattern"], value), path
    if "minimum" in node:
        assert value >= node["minimum"], path
    if "maximum" in node:
        assert value <= node["maximum"], path
    if kind == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        props = node.get("properties")
        for key, item in value.items():
            if props is not None:
                assert key in props, f"default would be pruned: {path}.{key}"
                conforms(item, props[key], f"{path}.{key}")
            else:
                conforms(item, node["additionalProperties"], f"{path}.{key}")
        for key in node.get("required", []):
            assert key in value, f"{path}.{key} required"
    if kind == "array":
        for i, item in enumerate(value):
            conforms(item, node["items"], f"{path}[{i}]")


def test_defaults_are_valid_unpruned_and_agree_with_pydantic() -> None:
    schema = spec_schema()
    found = 0
    for path, node in schema_nodes(schema):
        if "default" in node:
            found += 1
            conforms(node["default"], node, path)
    assert found > 20
    # The API server's defaulting and pydantic's give the same object.
    minimal = {"model": {"name": "m", "uri": "s3://bucket/m"}}
    defaulted = apply_defaults(minimal, schema)
    assert ModelDeploymentSpec.model_validate(defaulted) == ModelDeploymentSpec.model_validate(
        minimal
    )
    assert defaulted["runtime"]["ports"] == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert defaulted["scaling"]["minReplicas"] == 1


def apply_defaults(value: Any, node: dict[str, Any]) -> Any:
    """Structural defaulting as the API server does it: absent fields get defaults, recursively."""
    if isinstance(value, dict) and "properties" in node:
        out = dict(value)
        for key, prop in node["properties"].items():
            if key not in out and "default" in prop:
                out[key] = prop["default"]
            if key in out:
                out[key] = apply_defaults(out[key], prop)
        return out
    if isinstance(value, list) and "items" in node:
        return [apply_defaults(v, node["items"]) for v in value]
    return value


@pytest.mark.parametrize(
    "wire",
    [
        {
            "model": {"name": "m", "uri": "s3://bucket/m"},
            "rollout": {"strategy": "canary", "canary": {}},
        },
        {
            "model": {"name": "m", "uri": "pvc://c"},
            "resources": {"gpu": {"mig": {"profile": "1g.10gb"}}},
        },
    ],
)
def test_defaulted_objects_still_validate(wire: dict[str, Any]) -> None:
    defaulted = apply_defaults(wire, spec_schema())
    conforms(defaulted, spec_schema())
    assert ModelDeploymentSpec.model_validate(defaulted) == ModelDeploymentSpec.model_validate(wire)

"""The ModelDeployment CustomResourceDefinition, generated from the pydantic models.

The models in :mod:`gantry.api.spec` and :mod:`gantry.api.status` are the single
source of truth; this module turns their JSON Schema into the *structural*
OpenAPI v3 schema the API server demands:

* every ``$ref`` is inlined (structural schemas allow no references);
* ``Optional[X]`` (``anyOf: [X, {type: null}]``) becomes plain ``X``: an absent
  field means "not set", and non-nullable nulls are pruned by the API server, so
  ``null`` never needs to travel on the wire;
* ``title`` and ``additionalProperties: false|true`` are dropped (pruning already
  removes unknown fields); ``additionalProperties: {schema}`` maps stay;
* JSON Schema's numeric ``exclusiveMinimum: 0`` becomes OpenAPI v3.0's
  ``minimum: 0, exclusiveMinimum: true``;
* spec defaults are kept, including those of ``default_factory`` fields, with
  ``null`` and empty containers removed, so the stored object shows the
  effective configuration and CEL rules always see the fields they read;
  the status carries no defaults (the operator writes it whole).

``python -m gantry.api.crd`` prints the YAML that lives in ``crds/``.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import core_schema

from gantry.api.spec import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    ModelDeploymentSpec,
)
from gantry.api.status import ModelDeploymentStatus

CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_FILENAME = f"{GROUP}_{PLURAL}.yaml"
CATEGORIES = ("gantry", "all")

_HEADER = (
    "# Generated from operator/gantry/api by `python -m gantry.api.crd`; do not edit.\n"
    "# tests/api/test_crd.py fails when this file drifts from the models.\n"
)

# What serves, not what was asked for: READY counts model servers, VERSION is the stable's
# model version, CANARY and WEIGHT exist only while a canary is in flight.
_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Phase",
        "type": "string",
        "jsonPath": ".status.phase",
        "description": "Progressing, Ready, Paused, Degraded or Failed (Stalled).",
    },
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": ".status.servers",
        "description": "Pods whose model answers ready / desired pods.",
    },
    {
        "name": "Version",
        "type": "string",
        "jsonPath": ".status.stable.modelVersion",
        "description": "Model version the stable revision serves.",
    },
    {
        "name": "Canary",
        "type": "string",
        "jsonPath": ".status.canaryVersion",
        "description": "Model version of the canary in flight.",
    },
    {
        "name": "Weight",
        "type": "integer",
        "jsonPath": ".status.canaryWeight",
        "description": "Percent of traffic the canary in flight is meant to receive.",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Model",
        "type": "string",
        "jsonPath": ".spec.model.name",
        "priority": 1,
        "description": "Model name.",
    },
    {
        "name": "Step",
        "type": "integer",
        "jsonPath": ".status.canary.stepIndex",
        "priority": 1,
        "description": "Index of the canary's current step.",
    },
    {
        "name": "GPUs",
        "type": "integer",
        "jsonPath": ".status.gpus.allocated",
        "priority": 1,
        "description": "GPUs or MIG slices held by running pods now.",
    },
    {
        "name": "Message",
        "type": "string",
        "jsonPath": ".status.message",
        "priority": 1,
        "description": "What is going on, for humans.",
    },
]


class _FactoryDefaults(GenerateJsonSchema):
    """JSON Schema generation that also reports ``default_factory`` values."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return schema.get("default", NoDefault)


_EMPTY: Any = object()


def _compact(value: Any) -> Any:
    """Drops ``None`` and empty containers, recursively (``_EMPTY`` when nothing is left)."""
    if isinstance(value, dict):
        kept = {k: c for k, v in value.items() if (c := _compact(v)) is not _EMPTY}
        return kept if kept else _EMPTY
    if isinstance(value, list):
        items = [c for v in value if (c := _compact(v)) is not _EMPTY]
        return items if items else _EMPTY
    return _EMPTY if value is None else value


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inlines ``$ref`` and unwraps ``Optional``; keys beside them win (field over class)."""
    while True:
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **siblings}
        elif "anyOf" in node:
            options = [o for o in node["anyOf"] if o != {"type": "null"}]
            if len(options) != 1:
                raise ValueError(f"unions other than Optional[X] are not structural: {node}")
            siblings = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**options[0], **siblings}
        else:
            return node


def _structural(node: dict[str, Any], defs: dict[str, Any], *, defaults: bool) -> dict[str, Any]:
    """Converts one pydantic JSON Schema node into a structural OpenAPI v3 node."""
    node = _resolve(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "default":
            compact = _compact(value)
            if defaults and compact is not _EMPTY:
                out[key] = compact
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _structural(value, defs, defaults=defaults)
        elif key == "properties":
            out[key] = {
                name: _structural(prop, defs, defaults=defaults) for name, prop in value.items()
            }
        elif key == "items":
            out[key] = _structural(value, defs, defaults=defaults)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = value
    if out.get("x-kubernetes-preserve-unknown-fields") and "type" not in out:
        # Every passthrough in the API is a core/v1 object (Toleration, Affinity, ...).
        out["type"] = "object"
    return out


def spec_schema() -> dict[str, Any]:
    """The structural schema of ``.spec``."""
    raw = ModelDeploymentSpec.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_FactoryDefaults
    )
    return _structural(raw, raw.get("$defs", {}), defaults=True)


def status_schema() -> dict[str, Any]:
    """The structural schema of ``.status`` (no defaults: the operator writes it whole)."""
    raw = ModelDeploymentStatus.model_json_schema(by_alias=True, mode="validation")
    schema = _structural(raw, raw.get("$defs", {}), defaults=False)
    # metav1.Condition lists are maps keyed by type (one condition per type), as in core APIs.
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


def build_crd() -> dict[str, Any]:
    """Returns the CustomResourceDefinition as a plain dict."""
    root = {
        "type": "object",
        "description": "A model served by Triton Inference Server on GPUs, with autoscaling "
        "and progressive canary rollouts.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "The versioned schema of this object: serving.gantry.dev/v1alpha1.",
            },
            "kind": {
                "type": "string",
                "description": "The REST resource this object represents: ModelDeployment.",
            },
            # The API server allows nothing more here (not even a description).
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": {
                **status_schema(),
                # An object the operator has not looked at yet reads as observedGeneration 0,
                # behind metadata.generation: kstatus (Flux, kpt) then says InProgress, not
                # Current, for a ModelDeployment just applied.
                "default": {"observedGeneration": 0},
            },
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": _PRINTER_COLUMNS,
                }
            ],
        },
    }


def crd_yaml() -> str:
    """Returns the CRD as the YAML document kept in ``crds/``."""
    body = yaml.safe_dump(build_crd(), sort_keys=True, width=100, allow_unicode=True)
    return _HEADER + body


if __name__ == "__main__":  # pragma: no cover - a developer convenience
    sys.stdout.write(crd_yaml())

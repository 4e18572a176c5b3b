"""Generates ``k8s_schemas.json``, the core types Gantry passes through, from Kubernetes' OpenAPI.

A developer tool, not part of the operator at run time (nothing imports it there).
``placement.tolerations``, ``placement.affinity``, ``runtime.env`` and
``scaling.behavior`` end up verbatim in a Deployment or an HPA, so the CRD must
describe them with the real schemas, not a hand-copied approximation that drifts
with every Kubernetes release. This module reads the published OpenAPI v3
documents of the pinned ``k8s.io/kubernetes`` module (the one the local control
plane is built from), takes the definitions in :data:`DEFINITIONS` and turns each
into a self-contained *structural* schema, the only kind a CRD may embed:

* every ``$ref`` (and OpenAPI's ``allOf: [{$ref}]`` wrapper) is inlined, keys
  beside the reference winning (a field's own description over its type's);
* ``Quantity`` (``oneOf: [string, number]``, not structural) becomes a string,
  ``IntOrString`` becomes ``x-kubernetes-int-or-string``;
* only keys a CRD schema allows are kept: the list and map markers
  (``x-kubernetes-list-type``, ``-list-map-keys``, ``-map-type``) stay, the
  strategic-merge-patch and group-version-kind markers go;
* ``default`` goes too: defaulting is the child API's job, and in a CRD it would
  be stamped onto the stored ModelDeployment (``default: ""`` on a required key
  would even turn a missing field into an invalid one).

What the OpenAPI cannot say (enums, name formats, ranges the validation code
enforces) is added on top by :mod:`gantry.api.core_types`, not here: this file
stays a pure function of the upstream documents, which is what lets a test
regenerate and compare it, and an e2e test compare it with a live API server.

    python -m gantry.api.k8s_openapi            # rewrite k8s_schemas.json
    python -m gantry.api.k8s_openapi --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MODULE = "k8s.io/kubernetes"
# The Go module that pins k8s.io/kubernetes for the local control plane.
WRAPPER_DIR = Path(__file__).resolve().parents[3] / "e2e" / "cluster" / "tools" / "kubernetes"
VENDORED = Path(__file__).with_name("k8s_schemas.json")

# Definition -> the OpenAPI v3 document (its path under /openapi/v3) that holds it.
DEFINITIONS: dict[str, str] = {
    "io.k8s.api.core.v1.Toleration": "api/v1",
    "io.k8s.api.core.v1.Affinity": "api/v1",
    "io.k8s.api.core.v1.EnvVar": "api/v1",
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior": "apis/autoscaling/v2",
}

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"

# apiextensions.k8s.io/v1 JSONSchemaProps keys that a structural schema may carry.
CRD_KEYS = frozenset(
    {
        "type", "format", "description", "enum", "pattern", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems",
        "maxItems", "minProperties", "maxProperties", "multipleOf", "required", "properties",
        "items", "additionalProperties", "nullable", "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource",
    }
)  # fmt: skip


class GeneratorError(RuntimeError):
    """The documents hold something this generator cannot turn into a structural schema."""


def document_file(document: str) -> str:
    """``api/v1`` -> ``api__v1_openapi.json``, the file name in ``api/openapi-spec/v3``."""
    return f"{document.replace('/', '__')}_openapi.json"


def _schemas(documents: Mapping[str, Mapping[str, Any]], document: str) -> dict[str, Any]:
    try:
        schemas: dict[str, Any] = documents[document]["components"]["schemas"]
    except KeyError as exc:
        raise GeneratorError(f"OpenAPI document {document} has no components.schemas") from exc
    return schemas


def _target(ref: str) -> str:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise GeneratorError(f"unsupported $ref {ref!r}")
    return ref[len(prefix) :]


def _special(name: str) -> dict[str, Any] | None:
    """Types whose OpenAPI form is not structural, in the form a CRD uses for them."""
    if name == QUANTITY:
        # A CRD cannot say "string or number"; Gantry's fields take quantities as strings.
        return {"type": "string"}
    if name == INT_OR_STRING:
        return {"x-kubernetes-int-or-string": True}
    return None


def _inline(
    node: Mapping[str, Any], schemas: Mapping[str, Any], stack: tuple[str, ...]
) -> dict[str, Any]:
    """``node`` with its reference (direct or ``allOf``-wrapped) replaced by the target."""
    refs = [node["$ref"]] if "$ref" in node else []
    if "allOf" in node:
        wrapped = node["allOf"]
        if not (len(wrapped) == 1 and set(wrapped[0]) == {"$ref"}):
            raise GeneratorError(f"allOf other than one $ref is not structural: {wrapped}")
        refs.append(wrapped[0]["$ref"])
    siblings = {k: v for k, v in node.items() if k not in ("$ref", "allOf")}
    if not refs:
        return dict(node)
    name = _target(refs[0])
    if name in stack:
        raise GeneratorError(f"recursive definition {' -> '.join((*stack, name))}")
    special = _special(name)
    if special is not None:
        target: dict[str, Any] = special
    else:
        if name not in schemas:
            raise GeneratorError(f"$ref to unknown definition {name}")
        target = structural(schemas[name], schemas, (*stack, name))
    return {**target, **structural(siblings, schemas, stack)}


def structural(
    node: Mapping[str, Any], schemas: Mapping[str, Any], stack: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One OpenAPI v3 schema node as a self-contained structural schema (see module docs)."""
    if "$ref" in node or "allOf" in node:
        return _inline(node, schemas, stack)
    if "oneOf" in node or "anyOf" in node:
        raise GeneratorError(f"unions are not structural: {sorted(node)} in {stack}")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in CRD_KEYS:
            continue
        if key == "properties":
            out[key] = {name: structural(prop, schemas, stack) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = structural(value, schemas, stack)
        else:
            out[key] = value
    return out


def extract(documents: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every definition in :data:`DEFINITIONS` as a structural schema, keyed by its name.

    Args:
        documents: OpenAPI v3 documents by their path under ``/openapi/v3`` (``api/v1``,
            ``apis/autoscaling/v2``), as read from the module or from an API server.
    """
    return {
        name: structural({"$ref": f"#/components/schemas/{name}"}, _schemas(documents, doc))
        for name, doc in sorted(DEFINITIONS.items())
    }


def render(definitions: Mapping[str, Any], version: str) -> str:
    """The vendored file's text: stable key order, so a regeneration diffs only real changes."""
    body = {
        "generatedBy": "python -m gantry.api.k8s_openapi; do not edit",
        "source": f"{MODULE}@{version} api/openapi-spec/v3",
        "definitions": definitions,
    }
    return json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def read_module(module_dir: Path) -> dict[str, dict[str, Any]]:
    """The OpenAPI documents :data:`DEFINITIONS` needs, from a k8s.io/kubernetes source tree."""
    spec_dir = module_dir / "api" / "openapi-spec" / "v3"
    return {
        doc: json.loads((spec_dir / document_file(doc)).read_text())
        for doc in sorted(set(DEFINITIONS.values()))
    }


def generate(module_dir: Path, version: str) -> str:
    """The vendored file's text as generated from the module at ``module_dir``."""
    return render(extract(read_module(module_dir)), version)


def locate_module(*, download: bool = False) -> tuple[Path, str]:
    """Directory and version of the pinned k8s.io/kubernetes in the Go module cache.

    Raises:
        GeneratorError: no Go toolchain, or the module is not in the cache (building the
            control plane, ``python -m e2e.cluster up``, puts it there; ``download`` lets
            ``go`` fetch it through the module proxy instead).
    """
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    if not download:
        env["GOPROXY"] = "off"
    try:
        result = subprocess.run(
            ["go", "list", "-m", "-json", MODULE],
            cwd=WRAPPER_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except FileNotFoundError as exc:
        raise GeneratorError("no `go` on PATH to locate the pinned k8s.io/kubernetes") from exc
    if result.returncode != 0:
        raise GeneratorError(f"go list -m {MODULE} failed: {result.stderr.strip()}")
    info = json.loads(result.stdout)
    directory = info.get("Dir")
    if not directory or not Path(directory).is_dir():
        raise GeneratorError(
            f"{MODULE}@{info.get('Version')} is not in the Go module cache "
            "(build the control plane with `python -m e2e.cluster up`, or pass --download)"
        )
    return Path(directory), str(info["Version"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gantry.api.k8s_openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--download", action="store_true", help="let go fetch the module")
    args = parser.parse_args(argv)
    module_dir, version = locate_module(download=args.download)
    text = generate(module_dir, version)
    if args.check:
        stale = not VENDORED.exists() or VENDORED.read_text() != text
        if stale:
            sys.stderr.write(f"{VENDORED.name} is stale: run python -m gantry.api.k8s_openapi\n")
        return 1 if stale else 0
    VENDORED.write_text(text)
    sys.stderr.write(f"wrote {VENDORED} from {MODULE}@{version}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover - a developer command
    raise SystemExit(main())

"""The Helm chart under test: helm, kubeconform, schemas from a live API server, identities.

* :class:`Helm` runs the helm binary built with the local control plane (``.cluster/bin``,
  or ``helm`` on PATH) against one kubeconfig.
* :func:`write_schemas` turns the API server's ``/openapi/v2`` (and a CRD file) into the
  per-kind JSON schemas kubeconform reads offline.
* :func:`service_account_kubeconfig` writes a kubeconfig whose only credential is a
  TokenRequest token of one ServiceAccount: the operator run with it has exactly the
  chart's RBAC, nothing of the admin's.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from e2e.cluster import REPO_ROOT, Kubectl

__all__ = [
    "CHART",
    "HELM_MISSING",
    "KUBECONFORM_MISSING",
    "VALUE_SETS",
    "Helm",
    "HelmError",
    "find_tool",
    "kubeconform",
    "service_account_kubeconfig",
    "write_schemas",
]

CHART = REPO_ROOT / "charts" / "gantry"
# Every values set the chart is checked with (tests/chart, and kubeconform in e2e/test_chart.py).
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"watchNamespaces": ["ml", "ml-staging"]},
    "patterns": {"namespacePatterns": ["team-*", "!team-old"]},
    "everything": {
        "replicaCount": 2,
        "leaderElection": {"enabled": True},
        "image": {"digest": "sha256:" + "a" * 64},
        "operator": {
            "prometheusUrl": "http://prometheus.monitoring:9090",
            "tritonAccessTokenSecret": {"name": "triton", "key": "token"},
            "verbose": True,
        },
        "serviceMonitor": {"enabled": True},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True, "folder": "Gantry"},
        "argocd": {"enabled": True, "namespace": "argocd"},
    },
}

# kubeconform's own naming: <kind>-<first part of the group>-<version>, <kind>-<version> for core.
SCHEMA_LOCATION = "{{ .ResourceKind }}{{ .KindSuffix }}.json"


def find_tool(name: str) -> str | None:
    """The binary built with the local control plane, else one on PATH."""
    local = REPO_ROOT / ".cluster" / "bin" / name
    if local.exists():
        return str(local)
    return shutil.which(name)


HELM = find_tool("helm")
HELM_MISSING = None if HELM else "no helm binary (`make cluster-up` builds it into .cluster/bin)"
KUBECONFORM = find_tool("kubeconform")
KUBECONFORM_MISSING = (
    None if KUBECONFORM else "no kubeconform binary (`make cluster-up` builds it into .cluster/bin)"
)


class HelmError(RuntimeError):
    """helm exited non-zero; the message holds its stderr."""

    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        self.stderr = result.stderr
        super().__init__(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")


@dataclass(frozen=True)
class Helm:
    """``helm`` against one kubeconfig (None: helm's own default)."""

    kubeconfig: Path | None = None

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 180.0
    ) -> subprocess.CompletedProcess[str]:
        if HELM is None:
            raise RuntimeError(HELM_MISSING)
        argv = [HELM, *args]
        if self.kubeconfig is not None:
            argv.append(f"--kubeconfig={self.kubeconfig}")
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise HelmError(args, result)
        return result

    def template(self, values: Mapping[str, Any] | None = None, *args: str) -> list[dict[str, Any]]:
        """The chart rendered with ``values`` (as a values file), one dict per object."""
        out = self(
            "template",
            "gantry",
            str(CHART),
            "--namespace=gantry-system",
            "-f",
            "-",
            *args,
            input=yaml.safe_dump(dict(values or {})),
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]


def kubeconform(schema_dir: Path, manifests: str, *, skip: Sequence[str] = ()) -> str:
    """Validate ``manifests`` strictly against the schemas in ``schema_dir``, offline.

    Raises:
        AssertionError: with kubeconform's report, when anything is invalid or has no schema.
    """
    if KUBECONFORM is None:
        raise RuntimeError(KUBECONFORM_MISSING)
    argv = [
        KUBECONFORM,
        "-strict",
        "-summary",
        "-output=text",
        f"-schema-location={schema_dir}/{SCHEMA_LOCATION}",
    ]
    if skip:
        argv.append(f"-skip={','.join(skip)}")
    result = subprocess.run(
        [*argv, "-"], input=manifests, capture_output=True, text=True, timeout=120, check=False
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"kubeconform refused the manifests:\n{report}"
    return report


# -- schemas ------------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """An OpenAPI schema as kubeconform's strict JSON schema.

    Objects with declared properties refuse unknown ones (what ``kubectl apply`` with field
    validation does), int-or-string accepts both, and preserved-unknown objects stay open.
    Only schema positions are rewritten, never a ``properties`` map itself (JSONSchemaProps
    has properties named ``format`` or ``properties``).
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [_strict(s) for s in out[key]]
    if out.get("format") == "int-or-string" or out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("format", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _filename(group: str, version: str, kind: str) -> str:
    suffix = f"-{group.split('.')[0].lower()}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix}.json"


def _reachable(definitions: Mapping[str, Any], root: str) -> dict[str, Any]:
    """The definitions ``root`` refers to, transitively (a file per kind stays small)."""
    seen: dict[str, Any] = {}
    stack = [root]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen[name] = definitions[name]
        stack.extend(re.findall(r'"#/definitions/([^"]+)"', json.dumps(definitions[name])))
    return seen


def write_schemas(openapi_v2: Mapping[str, Any], crd_files: Sequence[Path], out: Path) -> int:
    """One JSON schema file per kind the API server serves, plus each CRD's versions.

    Every file carries the definitions its kind refers to, so kubeconform needs nothing but
    the file. Returns the number of files written.
    """
    out.mkdir(parents=True, exist_ok=True)
    definitions = {k: _strict(v) for k, v in openapi_v2["definitions"].items()}
    written = 0
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            path = out / _filename(gvk["group"], gvk["version"], gvk["kind"])
            body = {"$ref": f"#/definitions/{name}", "definitions": _reachable(definitions, name)}
            path.write_text(json.dumps(body))
            written += 1
    for crd_file in crd_files:
        crd = yaml.safe_load(crd_file.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            schema.setdefault("properties", {}).update(
                {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                }
            )
            (out / _filename(group, version["name"], kind)).write_text(json.dumps(_strict(schema)))
            written += 1
    return written


# -- identity -----------------------------------------------------------------------------------


def service_account_kubeconfig(
    kubectl: Kubectl, namespace: str, service_account: str, out: Path, *, duration: str = "2h"
) -> Path:
    """A kubeconfig for ``system:serviceaccount:<namespace>:<service_account>`` only.

    The token comes from the TokenRequest API (``kubectl create token``); the server and CA
    are the admin kubeconfig's, every admin credential is left out.
    """
    token = kubectl(
        "create", "token", service_account, "-n", namespace, f"--duration={duration}"
    ).stdout.strip()
    admin = kubectl.json("config", "view", "--minify", "--raw")
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [
            {
                "name": "sa",
                "context": {"cluster": "local", "user": service_account, "namespace": namespace},
            }
        ],
        "current-context": "sa",
    }
    out.write_text(yaml.safe_dump(config))
    out.chmod(0o600)
    return out

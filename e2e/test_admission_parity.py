"""Admission parity: whatever the CRD accepts, every child Gantry renders from it is accepted too.

A field Gantry passes through (a quantity, a toleration, an image, a model URI...)
is validated twice by the API server: once in the ModelDeployment (the CRD
schema, at ``kubectl apply``) and once more in the child the operator applies
(the Deployment, HPA, HTTPRoute, Service, PDB). When the second gate is the
stricter one, the user's apply says "created" and the operator's apply fails
later with a 422 nobody sees. This test is the differential check: for each
pass-through field it takes a table of boundary and invalid values, and for each
value asks the real API server about the ModelDeployment
(``kubectl create --dry-run=server``) and about every child Gantry's own
renderer produces from it (``kubectl apply --server-side --dry-run=server``,
as the operator applies). It also asks pydantic, which the operator and
``gantry render`` parse the spec with. It fails, listing every case, when:

* the CRD accepts a value and a child refuses it;
* the CRD and pydantic disagree (either way);
* the CRD refuses a value without naming the field in kubectl's message;
* any request answers a server error (500) or times out.

Values only ever reach a child when pydantic accepts them, and every quantity in
the tables has a small exponent: comparing a quantity such as "1e2147483647"
keeps an API server core busy for hours (the reason the CRD bounds exponents).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from e2e.cluster import Kubectl
from gantry.api.spec import API_VERSION, KIND, ModelDeploymentSpec
from gantry.preview import preview_children

pytestmark = [pytest.mark.usefixtures("crd_installed", "gateway_api_crds")]

NAME = "parity"
# Every child kind at once: a CPU model (no GPU affinity merged in), autoscaled (HPA, and
# a PDB since it may run 3 pods), canary on a Gateway API HTTPRoute (revision Services).
BASE: dict[str, Any] = {
    "model": {"name": "resnet50", "uri": "s3://models/resnet50", "version": "3"},
    "resources": {"cpu": "1", "memory": "2Gi"},
    "scaling": {"minReplicas": 1, "maxReplicas": 3, "metric": {"type": "cpu", "target": 80}},
    "rollout": {
        "strategy": "canary",
        "canary": {
            "steps": [{"setWeight": 50}],
            "trafficRouting": {"type": "gatewayAPI", "parentRefs": [{"name": "edge"}]},
        },
    },
}
_ROUTING = "rollout.canary.trafficRouting"
_NODE_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def _required_terms(*expressions: dict[str, Any]) -> dict[str, Any]:
    terms = [{"matchExpressions": list(expressions)}]
    return {"nodeAffinity": {_NODE_REQUIRED: {"nodeSelectorTerms": terms}}}


def _field_terms(key: str, value: str) -> dict[str, Any]:
    terms = [{"matchFields": [{"key": key, "operator": "In", "values": [value]}]}]
    return {"nodeAffinity": {_NODE_REQUIRED: {"nodeSelectorTerms": terms}}}


def _pod_term(**term: Any) -> dict[str, Any]:
    return {"podAntiAffinity": {_NODE_REQUIRED: [term]}}


def _app(value: str = "x") -> dict[str, Any]:
    return {"matchLabels": {"app": value}}


_APP_GT = {"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}


HOST = "kubernetes.io/hostname"

# Field (spec path, dotted) -> values tried there. Valid values are part of each table:
# the CRD must not refuse what every child accepts (pydantic and CRD agreeing on them).
# fmt: off
FIELDS: dict[str, list[Any]] = {
    "resources.cpu": [
        "-1", "0", "1.5.5", "1e3m", "0.0001", "1Ki", "1e1000", "500m", "4", "+1", "1E",
        "1e-3", " 1", "1m", "0.5", "1e6", ".5", "1.", "2M",
    ],
    "resources.memory": [
        "-1", "0", "1.5Gi", "0.5", "1e3m", "16Gi", "1Ei", "8Ei", "1e1000", "Gi", "1Mi ",
        "1e18", "512M",
    ],
    "runtime.shmSize": ["-1Gi", "0", "1Gi", "1e3m", "64Mi", "0.5Gi", "1e1000"],
    "placement.tolerations": [
        [{"key": "a", "operator": "Sometimes"}],
        [{"operator": "Equal", "value": "x"}],
        [{"key": "a", "operator": "Exists", "value": "x"}],
        [{"key": "a", "operator": "Exists", "effect": "NoScheduleX"}],
        [{"key": "a", "operator": "Equal", "value": "bad value"}],
        [{"key": "-a", "operator": "Exists"}],
        [{"key": "a", "operator": "Exists", "tolerationSeconds": 5}],
        [{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}],
        [{"operator": "Exists"}],
        [{"key": "a", "operator": "Lt", "value": "5"}],
        [{"key": "a", "operator": ""}],
        [{"key": "example.com/a", "value": "v", "effect": "PreferNoSchedule"}],
        [{"key": "a", "operator": "Exists", "effect": ""}],
        [{"key": "a", "operator": "Exists", "tolerations": 1}],
        [{"key": "a\n", "operator": "Exists"}],
    ],
    "placement.affinity": [
        {"nodeAffinity": {_NODE_REQUIRED: {"nodeSelectorTerms": []}}},
        _required_terms({"key": "zone", "operator": "In"}),
        _required_terms({"key": "zone", "operator": "Exists", "values": ["a"]}),
        _required_terms({"key": "mem", "operator": "Gt", "values": ["1", "2"]}),
        _required_terms({"key": "mem", "operator": "Gt", "values": ["lots"]}),
        _required_terms({"key": "mem", "operator": "Gt", "values": ["100"]}),
        _required_terms({"key": "-zone", "operator": "Exists"}),
        _required_terms({"key": "zone", "operator": "In", "values": ["bad value"]}),
        _required_terms({"key": "zone", "operator": "Near", "values": ["a"]}),
        _required_terms({"key": "zone", "operator": "In", "values": ["eu-1a"]}),
        _field_terms("metadata.uid", "x"),
        _field_terms("metadata.name", "node-0"),
        {"nodeAffinity": {_PREFERRED: [{"weight": 0, "preference": {}}]}},
        {"nodeAffinity": {_PREFERRED: [{"weight": 101, "preference": {}}]}},
        {"nodeAffinity": {_PREFERRED: [{"weight": 100, "preference": {}}]}},
        _pod_term(labelSelector=_app()),
        _pod_term(topologyKey="", labelSelector={}),
        _pod_term(topologyKey="not a key"),
        _pod_term(topologyKey=HOST, namespaces=["Team-A"]),
        _pod_term(topologyKey=HOST, matchLabelKeys=["app"]),
        _pod_term(topologyKey=HOST, labelSelector=_app(), matchLabelKeys=["app"]),
        _pod_term(topologyKey=HOST, labelSelector=_APP_GT),
        _pod_term(topologyKey=HOST, labelSelector=_app("-x")),
        _pod_term(topologyKey=HOST, labelSelector=_app(), matchLabelKeys=["pod-template-hash"]),
        {"podAffinity": {_PREFERRED: [{"weight": 5, "podAffinityTerm": {"topologyKey": HOST}}]}},
        {"nodeAffinity": {"unknownField": True}},
    ],
    "placement.nodeSelector": [
        {"-bad": "v"},
        {"example.com/ok": "v"},
        {"a": "bad value"},
        {"a/b/c": "v"},
        {"A.com/x": "v"},
        {"a": ""},
        {"x" * 64: "v"},
        {"a": "x" * 64},
        {"a": "b\n"},
    ],
    "placement.priorityClassName": ["High", "high-priority", "a_b", "a.", "x" * 254, "a.b"],
    "runtime.image": [
        "Triton Server",
        "nvcr.io/NVIDIA/triton",
        " busybox",
        "busybox ",
        "busybox",
        "a:b:c",
        "registry:5000/a/b:tag",
        f"a@sha256:{'a' * 64}",
        "",
        "busybox\n",
    ],
    "runtime.args": [["--x"], [""], ["a b"], ["$(VAR)"], ["x" * 4097]],
    "runtime.command": [["tritonserver"], [], ["/bin/sh", "-c", "exit 0"]],
    "runtime.env": [
        [{"name": "A B"}],
        [{"name": "1A"}],
        [{"name": "A=B"}],
        [{"name": ""}],
        [{"name": "GANTRY_MODEL_NAME", "value": "x"}],
        [{"name": "A"}, {"name": "A", "value": "2"}],
        [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    ],
    "runtime.ports": [
        {"http": 0},
        {"http": 65536},
        {"http": 8001},
        {"metrics": 1},
        {"http": 80, "grpc": 81, "metrics": 82},
    ],
    "model.uri": [
        "pvc://",
        "pvc:///x",
        "pvc://claim",
        "pvc://claim/a/../b",
        "pvc://Claim/x",
        "pvc://claim/a?b",
        "s3://",
        "s3://bucket",
        "gs://",
        "https://",
        "https://host",
        "https://host/m.pt",
        "file://rel",
        "file:///models",
        "ftp://host/x",
    ],
    "model.name": ["a", "A.b_c", "-x", "x" * 128, "x" * 129, "a/b"],
    "model.version": ["0", "007", "1.0", "x", "9" * 16],
    "resources.gpu": [
        {"count": 0},
        {"count": 17},
        {"count": 2},
        {"mig": {"profile": "1g.10gb+me"}},
        {"mig": {"profile": "1g.10gb"}},
        {"mig": {"profile": "10gb"}},
        {"product": "NVIDIA-H100-"},
        {"product": "A" * 64},
        {"product": "NVIDIA-H100-80GB-HBM3"},
        {"minMemoryMiB": 99999999999},
        {"minMemoryMiB": 99999999999999999999},
        {"minMemoryMiB": 40000},
    ],
    "scaling.behavior": [
        {"scaleUp": {"policies": []}},
        {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}},
        {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}},
        {"scaleUp": {"policies": [{"type": "Pod", "value": 1, "periodSeconds": 15}]}},
        {"scaleUp": {"policies": [{"type": "Pods", "value": 99999999999, "periodSeconds": 15}]}},
        {"scaleUp": {"selectPolicy": "Maximum"}},
        {"scaleDown": {"stabilizationWindowSeconds": 3601}},
        {"scaleDown": {"stabilizationWindowSeconds": -1}},
        {"scaleDown": {"tolerance": "-0.1"}},
        {"scaleDown": {"tolerance": "0.05"}},
        {"scaleUp": {}},
        {"scaleUp": {"policy": []}},
        {"scaleDown": {"selectPolicy": "Disabled"}},
    ],
    "scaling.metric": [
        {"type": "cpu", "target": 0.4},
        {"type": "cpu", "target": 1},
        {"type": "queueTimeMs", "target": 0.0004},
        {"type": "queueTimeMs", "target": 0.25},
        {"type": "inflight", "target": 1e9},
        {"type": "cpu", "target": 1e308},
    ],
    "scaling": [
        {"minReplicas": 0, "maxReplicas": 3},
        {"minReplicas": 1, "maxReplicas": 1001},
        {"minReplicas": 3, "maxReplicas": 2},
    ],
    "replicas": [-1, 0, 2, 1001, 99999999999999999999],
    "rollout.progressDeadlineSeconds": [29, 30, 9999999999, 2147483648, 99999999999999999999],
    f"{_ROUTING}.parentRefs": [
        [{"name": "gw", "namespace": "Bad_NS"}],
        [{"name": ""}],
        [{"name": "gw"}, {"name": "gw"}],
        [{"name": "gw", "sectionName": "a"}, {"name": "gw", "sectionName": "b"}],
        [{"name": "gw"}, {"name": "gw", "sectionName": "a"}],
        [{"name": "gw", "sectionName": "UPPER"}],
        [{"name": "gw", "namespace": "infra"}, {"name": "gw"}],
        [],
    ],
    f"{_ROUTING}.hostnames": [
        ["Models.example.com"],
        ["*.example.com"],
        ["a..b"],
        ["-a.com"],
        ["1.2.3.4"],
        [""],
        ["models.example.com"],
        ["*"],
    ],
}
# fmt: on


@dataclass
class Verdict:
    """What each gate said about one value."""

    path: str
    value: Any
    pydantic: str | None = None  # None: accepted; else the error
    crd: str | None = None
    children: dict[str, str | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def label(self) -> str:
        text = json.dumps(self.value)
        return f"spec.{self.path} = {text if len(text) <= 80 else text[:77] + '...'}"


def set_path(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    *parents, leaf = path.split(".")
    node = out
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out


def manifest(
    spec: dict[str, Any], namespace: str, api_version: str = API_VERSION
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": KIND,
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": spec,
    }


# kubectl -v=6 logs each response's status; a klog line starts like "I0102 15:04:05.000".
_STATUS = re.compile(r'status="(\d{3})')
_KLOG = re.compile(r"^[IWEF]\d{4} ")
SERVER_ERROR = "server error"


def _ask(kubectl: Kubectl, args: list[str], obj: dict[str, Any]) -> str | None:
    """None when the API server accepts ``obj`` (dry run), else kubectl's message.

    A 5xx answer (or a timeout) is reported as such, whatever kubectl prints for it:
    for a 500 it prints a bare "Error from server:".
    """
    # JSON, not YAML: the value must reach the server with the type it has here ("1e6"
    # written plainly in YAML would arrive as a number).
    text = json.dumps(obj)
    try:
        result = kubectl(*args, "-v=6", "-f", "-", input=text, check=False, timeout=90)
    except subprocess.TimeoutExpired:
        return f"{SERVER_ERROR}: no answer within 90s"
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).splitlines()
    # What kubectl says (from "Error from server" or "The X is invalid"), not its logs or
    # the response bodies -v=6 adds.
    said = [line for line in lines if not _KLOG.match(line)]
    start = next((i for i, line in enumerate(said) if line.startswith(("Error", "The "))), 0)
    message = " ".join(said[start:]).strip()
    statuses = [int(code) for line in lines for code in _STATUS.findall(line)]
    if any(code >= 500 for code in statuses) or "Timeout" in message:
        return f"{SERVER_ERROR} ({max(statuses, default=0)}): {message}"
    return message


def judge(
    kubectl: Kubectl, namespace: str, path: str, value: Any, api_version: str = API_VERSION
) -> Verdict:
    """Asks pydantic, the CRD and (if pydantic parses it) every rendered child."""
    verdict = Verdict(path, value)
    md = manifest(set_path(BASE, path, value), namespace, api_version)
    try:
        ModelDeploymentSpec.model_validate(md["spec"])
    except ValidationError as exc:
        verdict.pydantic = str(exc).replace("\n", " ")
    verdict.crd = _ask(kubectl, ["create", "--dry-run=server"], md)
    if verdict.pydantic is None:
        for child in preview_children(md):
            who = f"{child['kind']}/{child['metadata']['name']}"
            apply = ["apply", "--server-side", "--dry-run=server", "--field-manager=gantry"]
            verdict.children[who] = _ask(kubectl, apply, child)
    _find_problems(verdict)
    return verdict


def _find_problems(v: Verdict) -> None:
    for who, said in [("ModelDeployment", v.crd), *v.children.items()]:
        if said is not None and said.startswith(SERVER_ERROR):
            v.problems.append(f"{who}: {said[:400]}")
    if v.crd is None:
        for who, said in v.children.items():
            if said is not None:
                v.problems.append(f"CRD accepts, {who} refuses: {said[-300:]}")
        if v.pydantic is not None:
            v.problems.append(f"CRD accepts, pydantic refuses: {v.pydantic[:300]}")
    else:
        if v.pydantic is None:
            v.problems.append(f"pydantic accepts, CRD refuses: {v.crd[-300:]}")
        field_path = f"spec.{v.path}"
        if field_path not in v.crd:
            v.problems.append(f"CRD refusal does not name {field_path}: {v.crd[-300:]}")


def candidates() -> Iterator[tuple[str, Any]]:
    for path, values in FIELDS.items():
        for value in values:
            yield path, value


def test_tables_cover_every_pass_through_section() -> None:
    assert len(FIELDS) >= 12
    assert all(len(values) >= 3 for values in FIELDS.values())
    sections = {path.split(".")[0] for path in FIELDS}
    assert sections >= {"model", "runtime", "resources", "placement", "scaling", "rollout"}


def test_crd_and_children_agree_on_every_value(kubectl: Kubectl, namespace: str) -> None:
    cases = list(candidates())
    # A few kubectl processes at a time: each value is one MD and up to six child requests.
    with ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = list(pool.map(lambda c: judge(kubectl, namespace, *c), cases))
    refused = sum(v.crd is not None for v in verdicts)
    children = sum(len(v.children) for v in verdicts)
    failures = [v for v in verdicts if v.problems]
    print(
        f"\nadmission parity: {len(FIELDS)} fields, {len(cases)} values, {refused} refused by "
        f"the CRD, {children} child dry-runs, {len(failures)} mismatches"
    )
    report = "\n".join(f"{v.label()}\n    " + "\n    ".join(v.problems) for v in failures)
    assert not failures, f"{len(failures)} of {len(cases)} values disagree:\n{report}"


_ENUM_NOTE = "\n\nPossible enum values:"


def _without_enums(node: Any) -> Any:
    """``node`` without ``enum`` and the enum notes the API server appends to descriptions."""
    if isinstance(node, dict):
        out = {k: _without_enums(v) for k, v in node.items() if k != "enum"}
        if isinstance(out.get("description"), str):
            out["description"] = out["description"].split(_ENUM_NOTE)[0]
        return out
    if isinstance(node, list):
        return [_without_enums(v) for v in node]
    return node


def _enums(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, list[str]]]:
    if "enum" in node:
        yield path, node["enum"]
    for name, prop in node.get("properties", {}).items():
        yield from _enums(prop, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _enums(node["items"], f"{path}[]")


def _at(node: dict[str, Any], path: str) -> dict[str, Any]:
    for part in path.replace("[]", ".[]").strip(".").split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def test_vendored_core_schemas_match_the_live_api_server(kubectl: Kubectl) -> None:
    """The committed schemas are what this API server publishes, and enforce its enums.

    The published OpenAPI in the module carries no enums; a running API server adds
    them (and lists them in descriptions). Everything else must be identical, and every
    enum the server declares must be enforced by the CRD with the same or fewer values
    (fewer: e.g. toleration operators Lt/Gt need a feature gate the server refuses
    without).
    """
    from gantry.api.core_types import AFFINITY, ENV_VAR, HPA_BEHAVIOR, TOLERATION
    from gantry.api.k8s_openapi import DEFINITIONS, VENDORED, extract

    documents = {
        doc: json.loads(kubectl("get", "--raw", f"/openapi/v3/{doc}").stdout)
        for doc in sorted(set(DEFINITIONS.values()))
    }
    vendored = json.loads(VENDORED.read_text())["definitions"]
    live = extract(documents)
    differing = sorted(
        name for name in DEFINITIONS if _without_enums(live[name]) != _without_enums(vendored[name])
    )
    assert not differing, f"the API server's OpenAPI differs from {VENDORED.name} in {differing}"
    refined = {t.definition: t for t in (AFFINITY, ENV_VAR, HPA_BEHAVIOR, TOLERATION)}
    checked = 0
    for name, schema in live.items():
        core = refined[name]
        for path, values in _enums(schema):
            if core.only is not None and path.split(".")[1].rstrip("[]") not in core.only:
                continue
            enforced = _at(core.schema, path).get("enum")
            assert enforced is not None, f"{name}{path}: the CRD does not enforce {values}"
            assert set(enforced) <= set(values), f"{name}{path}: {enforced} not within {values}"
            checked += 1
    assert checked >= 5

"""Names, labels and the revision hash."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from pydantic import Field
from render_builders import BASE, OWNER, build_spec, serving_plan, stable_plan, walk

from gantry.api.plan import Owner
from gantry.api.spec import ModelDeploymentSpec, RuntimeSpec
from gantry.render import labels as lbl
from gantry.render import names
from gantry.render.children import render_children
from gantry.render.revision import revision

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LONG_NAME = "a" * 120 + "." + "b" * 132  # a valid 253-character DNS subdomain


@pytest.mark.parametrize(
    ("value", "limit"),
    [("short", 63), ("x" * 63, 63), ("x" * 64, 63), ("a-" * 40, 63), (LONG_NAME, 63)],
)
def test_fit(value: str, limit: int) -> None:
    out = names.fit(value, limit=limit)
    assert len(out) <= limit
    assert LABEL_VALUE.match(out)
    assert out == names.fit(value, limit=limit)
    if len(value) <= limit:
        assert out == value


def test_fit_keeps_distinct_values_distinct() -> None:
    assert names.fit("x" * 70 + "1") != names.fit("x" * 70 + "2")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("resnet", "resnet"),
        ("resnet-gpu-2", "resnet-gpu-2"),
        ("a.b", None),
        ("3d-unet", None),
        (LONG_NAME, None),
    ],
)
def test_dns_label(name: str, expected: str | None) -> None:
    out = names.dns_label(name)
    assert DNS_1035.match(out), out
    assert len(out) <= 63
    if expected is not None:
        assert out == expected
    assert names.dns_label("a.b") != names.dns_label("a-b")


def test_deployment_name() -> None:
    assert names.deployment_name("resnet") == "resnet"
    assert names.deployment_name("resnet", "0123456789") == "resnet-0123456789"
    assert len(names.deployment_name(LONG_NAME)) <= names.MAX_DEPLOYMENT_NAME
    assert len(names.deployment_name(LONG_NAME, "0123456789")) <= names.MAX_DEPLOYMENT_NAME


def test_pod_labels() -> None:
    spec = build_spec()
    plan = stable_plan(spec)
    labels = lbl.pod_labels(OWNER, spec, plan)
    assert labels == {
        "app.kubernetes.io/name": "resnet",
        "app.kubernetes.io/instance": "resnet",
        "app.kubernetes.io/component": "predictor",
        "app.kubernetes.io/part-of": "gantry",
        "app.kubernetes.io/managed-by": "gantry",
        "app.kubernetes.io/version": "3",
        "serving.gantry.dev/revision": plan.revision,
        "serving.gantry.dev/deployment": plan.name,
    }
    assert lbl.deployment_labels(OWNER, spec, plan) == {
        **labels,
        "serving.gantry.dev/role": "stable",
    }
    assert lbl.selector_string(OWNER) == (
        "app.kubernetes.io/component=predictor,app.kubernetes.io/instance=resnet,"
        "app.kubernetes.io/managed-by=gantry"
    )


def test_every_child_of_a_253_char_name_has_valid_names_and_labels() -> None:
    owner = Owner(name=LONG_NAME, namespace="ml", uid="u")
    spec = build_spec(
        scaling={"minReplicas": 1, "maxReplicas": 3},
        rollout={
            "strategy": "canary",
            "canary": {"trafficRouting": {"type": "gatewayAPI", "parentRefs": [{"name": "gw"}]}},
        },
    )
    children = render_children(owner, spec, serving_plan(spec, owner=owner, replicas=None))
    assert {c["kind"] for c in children} >= {
        "Service",
        "Deployment",
        "HTTPRoute",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    for child in children:
        name = child["metadata"]["name"]
        assert len(name) <= 253
        if child["kind"] in ("Service", "Deployment"):
            assert DNS_1035.match(name), name
            assert len(name) <= 63
        for node in walk(child):
            if isinstance(node, dict):
                for key in ("labels", "matchLabels", "selector"):
                    value = node.get(key)
                    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                        for v in value.values():
                            assert len(v) <= 63, (child["kind"], key, v)
                            assert LABEL_VALUE.match(v), (child["kind"], key, v)


# --- revision ---------------------------------------------------------------------------


def spec_with(**sections: Any) -> ModelDeploymentSpec:
    return build_spec(**sections)


def test_revision_is_ten_hex_chars_and_stable() -> None:
    rev = revision(spec_with())
    assert re.fullmatch(r"[0-9a-f]{10}", rev)
    assert rev == revision(spec_with())


def test_revision_is_the_same_in_another_process() -> None:
    code = (
        "import json, sys; from gantry.api.spec import ModelDeploymentSpec, RuntimeSpec;"
        "from gantry.render.revision import revision;"
        "print(revision(ModelDeploymentSpec.model_validate(json.loads(sys.argv[1]))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(BASE)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.strip() == revision(spec_with())


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"replicas": 5}, id="replicas"),
        pytest.param(
            {
                "scaling": {
                    "minReplicas": 2,
                    "maxReplicas": 9,
                    "metric": {"type": "inflight", "target": 4},
                }
            },
            id="scaling",
        ),
        pytest.param(
            {"rollout": {"strategy": "canary", "canary": {}, "progressDeadlineSeconds": 1200}},
            id="rollout",
        ),
        pytest.param({"model": {"version": "3", "format": "torchscript"}}, id="explicit-defaults"),
        pytest.param(
            {"runtime": {"ports": {"http": 8000}}, "resources": {"cpu": "1"}},
            id="explicit-nested-defaults",
        ),
        pytest.param({"runtime": {"readOnlyRootFilesystem": True}}, id="explicit-read-only-root"),
    ],
)
def test_revision_ignores_what_does_not_shape_pods(change: dict[str, Any]) -> None:
    assert revision(spec_with(**change)) == revision(spec_with())


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"model": {"version": "4"}}, id="model-version"),
        pytest.param({"model": {"uri": "s3://models/other"}}, id="model-uri"),
        pytest.param({"runtime": {"image": "nvcr.io/nvidia/tritonserver:25.02-py3"}}, id="image"),
        pytest.param({"runtime": {"env": [{"name": "A", "value": "1"}]}}, id="env"),
        pytest.param({"resources": {"gpu": {"count": 1}}}, id="gpu"),
        pytest.param({"resources": {"memory": "4Gi"}}, id="memory"),
        pytest.param({"placement": {"nodeSelector": {"pool": "a"}}}, id="placement"),
        pytest.param({"runtime": {"readOnlyRootFilesystem": False}}, id="writable-root"),
    ],
)
def test_revision_changes_with_the_pod_template_inputs(change: dict[str, Any]) -> None:
    assert revision(spec_with(**change)) != revision(spec_with())


class _LaterRuntime(RuntimeSpec):
    """The runtime section as a later API version might have it: one more defaulted field."""

    added_later: bool = False


class _LaterSpec(ModelDeploymentSpec):
    runtime: _LaterRuntime = Field(default_factory=_LaterRuntime)


def test_a_field_added_later_with_a_default_keeps_every_revision() -> None:
    # Else an operator upgrade that adds a field would start a rollout of every model.
    later = _LaterSpec.model_validate(BASE)
    assert later.runtime.added_later is False
    assert revision(later) == revision(spec_with())
    assert revision(_LaterSpec.model_validate({**BASE, "runtime": {"addedLater": True}})) != (
        revision(spec_with())
    )

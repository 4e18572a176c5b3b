"""render_deployment: GPU placement, model sources, runtime, probes, security, replicas."""

from __future__ import annotations

from typing import Any

import pytest
from render_builders import OWNER, build_spec, stable_plan

from gantry.api.plan import DeploymentPlan, Role
from gantry.render import labels as lbl
from gantry.render.deployment import render_deployment, render_scale
from gantry.render.model_source import DEFAULT_FETCHERS, FetcherImages
from gantry.render.pod import DRAIN_SECONDS, SERVER_CONTAINER

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
H100 = {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H100-80GB-HBM3"]}
MEM_80G = {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["79999"]}


def deploy(replicas: int | None = 2, **sections: Any) -> dict[str, Any]:
    spec = build_spec(**sections)
    return render_deployment(OWNER, spec, stable_plan(spec, replicas=replicas))


def pod(d: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = d["spec"]["template"]["spec"]
    return result


def server(d: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in pod(d)["containers"] if c["name"] == SERVER_CONTAINER]
    return container


def required_terms(d: dict[str, Any]) -> list[dict[str, Any]]:
    node = pod(d)["affinity"]["nodeAffinity"]
    terms: list[dict[str, Any]] = node["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    return terms


@pytest.mark.parametrize(
    ("resources", "limits", "terms", "tolerations"),
    [
        pytest.param(
            {"cpu": "2", "memory": "4Gi"}, {"cpu": "2", "memory": "4Gi"}, None, None, id="cpu-only"
        ),
        pytest.param(
            {"gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3", "minMemoryMiB": 80000}},
            {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": 1},
            [{"matchExpressions": [H100, MEM_80G]}],
            [GPU_TOLERATION],
            id="whole-gpu-product-memory",
        ),
        pytest.param(
            {"gpu": {"count": 2}},
            {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": 2},
            None,
            [GPU_TOLERATION],
            id="two-gpus-anywhere",
        ),
        pytest.param(
            {"gpu": {}},
            {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": 1},
            None,
            [GPU_TOLERATION],
            id="gpu-count-defaults-to-one",
        ),
        pytest.param(
            {"gpu": {"mig": {"profile": "1g.10gb"}}},
            {"cpu": "1", "memory": "2Gi", "nvidia.com/mig-1g.10gb": 1},
            None,
            [GPU_TOLERATION],
            id="mig",
        ),
        pytest.param(
            {
                "gpu": {
                    "mig": {"profile": "3g.40gb", "count": 2},
                    "product": "NVIDIA-A100-SXM4-80GB",
                }
            },
            {"cpu": "1", "memory": "2Gi", "nvidia.com/mig-3g.40gb": 2},
            [
                {
                    "matchExpressions": [
                        {
                            "key": "nvidia.com/gpu.product",
                            "operator": "In",
                            "values": ["NVIDIA-A100-SXM4-80GB"],
                        }
                    ]
                }
            ],
            [GPU_TOLERATION],
            id="mig-with-product",
        ),
    ],
)
def test_gpu_resources_affinity_and_tolerations(
    resources: dict[str, Any],
    limits: dict[str, Any],
    terms: list[dict[str, Any]] | None,
    tolerations: list[dict[str, Any]] | None,
) -> None:
    d = deploy(resources=resources)
    assert server(d)["resources"] == {"requests": limits, "limits": limits}
    if terms is None:
        assert "affinity" not in pod(d)
    else:
        assert required_terms(d) == terms
    assert pod(d).get("tolerations") == tolerations


USER_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
            ]
        },
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 10,
                "preference": {"matchExpressions": [{"key": "fast", "operator": "Exists"}]},
            }
        ],
    },
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {"app": "x"}},
                },
            }
        ]
    },
}


def test_user_required_terms_each_get_the_gpu_requirements() -> None:
    d = deploy(
        resources={"gpu": {"product": "NVIDIA-H100-80GB-HBM3"}},
        placement={"affinity": USER_AFFINITY},
    )
    assert required_terms(d) == [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, H100]},
        {
            "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}],
            "matchExpressions": [H100],
        },
    ]
    affinity = pod(d)["affinity"]
    assert affinity["podAntiAffinity"] == USER_AFFINITY["podAntiAffinity"]
    preferred = "preferredDuringSchedulingIgnoredDuringExecution"
    assert affinity["nodeAffinity"][preferred] == USER_AFFINITY["nodeAffinity"][preferred]


def test_user_affinity_without_required_terms_gets_a_gpu_term() -> None:
    user = {"podAntiAffinity": USER_AFFINITY["podAntiAffinity"]}
    d = deploy(resources={"gpu": {"minMemoryMiB": 80000}}, placement={"affinity": user})
    assert required_terms(d) == [{"matchExpressions": [MEM_80G]}]
    assert pod(d)["affinity"]["podAntiAffinity"] == user["podAntiAffinity"]


def test_user_affinity_passes_through_for_cpu_models() -> None:
    assert pod(deploy(placement={"affinity": USER_AFFINITY}))["affinity"] == USER_AFFINITY


@pytest.mark.parametrize(
    ("resources", "user", "expected"),
    [
        pytest.param({}, [], None, id="cpu-none"),
        pytest.param(
            {},
            [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
            [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
            id="cpu-user",
        ),
        pytest.param(
            {"gpu": {"count": 1}},
            [{"key": "dedicated", "operator": "Exists"}],
            [GPU_TOLERATION, {"key": "dedicated", "operator": "Exists"}],
            id="gpu-plus-user",
        ),
        pytest.param(
            {"gpu": {"count": 1}},
            [GPU_TOLERATION],
            [GPU_TOLERATION],
            id="gpu-user-duplicate-dropped",
        ),
    ],
)
def test_tolerations_merged(
    resources: dict[str, Any], user: list[dict[str, Any]], expected: list[dict[str, Any]] | None
) -> None:
    assert (
        pod(deploy(resources=resources, placement={"tolerations": user})).get("tolerations")
        == expected
    )


def test_node_selector_and_priority_class_pass_through() -> None:
    d = deploy(placement={"nodeSelector": {"pool": "gpu"}, "priorityClassName": "inference"})
    assert pod(d)["nodeSelector"] == {"pool": "gpu"}
    assert pod(d)["priorityClassName"] == "inference"
    assert "nodeSelector" not in pod(deploy())
    assert "priorityClassName" not in pod(deploy())


@pytest.mark.parametrize(
    ("uri", "image", "volume", "mount"),
    [
        pytest.param(
            "s3://models/resnet50",
            DEFAULT_FETCHERS.s3,
            {"name": "models", "emptyDir": {}},
            {"name": "models", "mountPath": "/models", "readOnly": True},
            id="s3",
        ),
        pytest.param(
            "gs://models/resnet50/",
            DEFAULT_FETCHERS.gs,
            {"name": "models", "emptyDir": {}},
            {"name": "models", "mountPath": "/models", "readOnly": True},
            id="gs",
        ),
        pytest.param(
            "https://example.com/resnet50.tar.gz",
            DEFAULT_FETCHERS.http,
            {"name": "models", "emptyDir": {}},
            {"name": "models", "mountPath": "/models", "readOnly": True},
            id="https",
        ),
        pytest.param(
            "http://files.local/model.pt",
            DEFAULT_FETCHERS.http,
            {"name": "models", "emptyDir": {}},
            {"name": "models", "mountPath": "/models", "readOnly": True},
            id="http",
        ),
        pytest.param(
            "pvc://model-store/repo/resnet50",
            None,
            {
                "name": "models",
                "persistentVolumeClaim": {"claimName": "model-store", "readOnly": True},
            },
            {
                "name": "models",
                "mountPath": "/models/resnet50",
                "readOnly": True,
                "subPath": "repo/resnet50",
            },
            id="pvc-subpath",
        ),
        pytest.param(
            "pvc://model-store",
            None,
            {
                "name": "models",
                "persistentVolumeClaim": {"claimName": "model-store", "readOnly": True},
            },
            {"name": "models", "mountPath": "/models/resnet50", "readOnly": True},
            id="pvc-whole-claim",
        ),
    ],
)
def test_model_sources(
    uri: str, image: str | None, volume: dict[str, Any], mount: dict[str, Any]
) -> None:
    d = deploy(model={"uri": uri})
    assert volume in pod(d)["volumes"]
    assert mount in server(d)["volumeMounts"]
    assert "--model-repository=/models" in server(d)["args"]
    if image is None:
        assert "initContainers" not in pod(d)
        return
    (fetch,) = pod(d)["initContainers"]
    assert fetch["image"] == image
    assert fetch["command"][:2] == ["/bin/sh", "-c"]
    env = {e["name"]: e["value"] for e in fetch["env"]}
    assert env["GANTRY_MODEL_URI"] == uri
    assert (env["GANTRY_MODEL_NAME"], env["GANTRY_MODEL_VERSION"]) == ("resnet50", "3")
    assert {"name": "models", "mountPath": "/models"} in fetch["volumeMounts"]
    assert uri not in fetch["command"][2], "user input must reach the script only via env"


def test_file_uri_is_a_repository_inside_the_image() -> None:
    d = deploy(model={"uri": "file:///opt/gantry/models"})
    assert "--model-repository=/opt/gantry/models" in server(d)["args"]
    assert "initContainers" not in pod(d)
    assert [v["name"] for v in pod(d)["volumes"]] == ["dshm", "tmp"], "no model volume"


def test_fetcher_images_are_configurable_and_see_only_storage_env() -> None:
    spec = build_spec(
        runtime={
            "env": [
                {"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"},
                {"name": "HTTPS_PROXY", "value": "http://proxy:3128"},
                {"name": "SECRET_TOKEN", "value": "x"},
            ]
        }
    )
    images = FetcherImages(s3="mirror.local/aws-cli:1")
    d = render_deployment(OWNER, spec, stable_plan(spec), fetchers=images)
    (fetch,) = pod(d)["initContainers"]
    assert fetch["image"] == "mirror.local/aws-cli:1"
    names = {e["name"] for e in fetch["env"]}
    assert {"AWS_ENDPOINT_URL", "HTTPS_PROXY"} <= names
    assert "SECRET_TOKEN" not in names
    assert fetch["resources"]["requests"] == fetch["resources"]["limits"]


def test_default_runtime_is_tritonserver_with_generated_flags() -> None:
    d = deploy(
        runtime={
            "ports": {"http": 9000, "grpc": 9001, "metrics": 9002},
            "args": ["--log-verbose=1"],
        }
    )
    c = server(d)
    assert c["command"] == ["tritonserver"]
    assert c["args"] == [
        "--model-repository=/models",
        "--http-port=9000",
        "--grpc-port=9001",
        "--metrics-port=9002",
        "--strict-readiness=true",
        f"--exit-timeout-secs={DRAIN_SECONDS}",
        "--metrics-config=summary_latencies=true",
        "--log-verbose=1",
    ]
    assert c["ports"] == [
        {"name": "http", "containerPort": 9000, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 9001, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9002, "protocol": "TCP"},
    ]


def test_custom_runtime_command_is_used_verbatim() -> None:
    d = deploy(
        model={"uri": "file:///opt/gantry/models"},
        runtime={
            "image": "gantry-runtime:0.1.0",
            "command": ["gantry", "serve"],
            "args": ["--cpu"],
        },
    )
    c = server(d)
    assert (c["image"], c["command"], c["args"]) == (
        "gantry-runtime:0.1.0",
        ["gantry", "serve"],
        ["--cpu"],
    )
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["GANTRY_MODEL_REPOSITORY"] == "/opt/gantry/models"
    assert env["GANTRY_HTTP_PORT"] == "8000"


def test_user_env_overrides_generated_env_without_duplicates() -> None:
    env = [{"name": "GANTRY_MODEL_NAME", "value": "other"}, {"name": "A", "value": "1"}]
    c = server(deploy(runtime={"env": env}))
    names = [e["name"] for e in c["env"]]
    assert len(names) == len(set(names))
    assert {"name": "GANTRY_MODEL_NAME", "value": "other"} in c["env"]
    assert {"name": "A", "value": "1"} in c["env"]


def test_probes_check_the_model_version_and_tolerate_slow_loads() -> None:
    c = server(deploy(model={"name": "bert", "version": "7"}))
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/models/bert/versions/7/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    startup = c["startupProbe"]
    assert startup["httpGet"]["path"] == "/v2/health/ready"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    assert all(
        c[p]["httpGet"]["port"] == "http"
        for p in ("startupProbe", "readinessProbe", "livenessProbe")
    )


def test_shm_is_memory_backed_and_sized() -> None:
    d = deploy(runtime={"shmSize": "4Gi"})
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi"}} in pod(d)[
        "volumes"
    ]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in server(d)["volumeMounts"]


def test_pod_meets_the_restricted_pod_security_standard() -> None:
    p = pod(deploy())
    assert p["securityContext"]["runAsNonRoot"] is True
    assert p["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert p["securityContext"]["runAsUser"] != 0
    for c in p["containers"] + p["initContainers"]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        # A read-only root needs a writable /tmp (Triton, PyTriton and the fetchers use it).
        assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, c["name"]
    volume_kinds = {k for v in p["volumes"] for k in v if k != "name"}
    assert volume_kinds <= {"emptyDir", "persistentVolumeClaim"}, "no hostPath"
    assert p["enableServiceLinks"] is False


@pytest.mark.parametrize(("read_only", "server_root"), [(None, True), (True, True), (False, False)])
def test_a_writable_root_is_a_spec_choice_for_the_server_only(
    read_only: bool | None, server_root: bool
) -> None:
    runtime = {} if read_only is None else {"readOnlyRootFilesystem": read_only}
    p = pod(deploy(runtime=runtime))
    (server_,) = p["containers"]
    assert server_["securityContext"]["readOnlyRootFilesystem"] is server_root
    # The fetcher is Gantry's own image: it never needs a writable root.
    assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in p["initContainers"])
    # Everything else the restricted standard asks stays, either way.
    assert server_["securityContext"]["allowPrivilegeEscalation"] is False
    assert server_["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_grace_period_covers_prestop_and_drain() -> None:
    p = pod(deploy())
    sleep = p["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert p["terminationGracePeriodSeconds"] > sleep + DRAIN_SECONDS


@pytest.mark.parametrize("replicas", [None, 0, 3])
def test_replicas_never_applied_only_scaled(replicas: int | None) -> None:
    assert "replicas" not in deploy(replicas=replicas)["spec"]
    spec = build_spec()
    scale = render_scale(stable_plan(spec, replicas=replicas))
    assert scale == (None if replicas is None else {"spec": {"replicas": replicas}})


def test_deployment_shape() -> None:
    spec = build_spec(rollout={"progressDeadlineSeconds": 900})
    plan = stable_plan(spec)
    d = render_deployment(OWNER, spec, plan)
    assert (d["apiVersion"], d["kind"]) == ("apps/v1", "Deployment")
    assert d["metadata"]["name"] == plan.name
    assert d["metadata"]["namespace"] == "ml"
    assert d["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    assert d["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert d["spec"]["progressDeadlineSeconds"] == 900
    selector = d["spec"]["selector"]["matchLabels"]
    template_labels = d["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= template_labels.items()
    assert selector[lbl.DEPLOYMENT] == plan.name
    assert lbl.ROLE not in template_labels, "promotion must not restart pods"
    assert d["metadata"]["labels"][lbl.ROLE] == "stable"
    assert template_labels[lbl.REVISION] == plan.revision
    assert template_labels[lbl.APP_VERSION] == "3"


def test_role_change_leaves_the_pod_template_alone() -> None:
    spec = build_spec()
    plan = stable_plan(spec)
    canary = DeploymentPlan(plan.name, plan.revision, Role.CANARY, plan.replicas)
    a, b = render_deployment(OWNER, spec, plan), render_deployment(OWNER, spec, canary)
    assert a["spec"]["template"] == b["spec"]["template"]
    assert a["metadata"]["labels"] != b["metadata"]["labels"]


def test_rendering_is_deterministic() -> None:
    assert deploy() == deploy()


@pytest.mark.parametrize(("replicas", "expected"), [(None, None), (4, {"spec": {"replicas": 4}})])
def test_render_scale(replicas: int | None, expected: dict[str, Any] | None) -> None:
    plan = DeploymentPlan("old", "abc", Role.STABLE, replicas, apply_template=False)
    assert render_scale(plan) == expected

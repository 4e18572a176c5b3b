"""The pod template: the inference server container and everything around it.

The template is a pure function of (spec, revision, Deployment name): no
timestamps, no random values, so re-rendering never restarts pods.

Probes (the KServe v2 protocol every Triton-compatible runtime speaks):

* startup ``/v2/health/ready`` every 5 s, up to 180 failures (15 minutes):
  loading a large model is slow, and liveness must not kill a pod that is still
  loading. Triton only opens its HTTP port once the repository is loaded.
* readiness ``/v2/models/{name}/versions/{version}/ready``: the *model version*
  this revision is meant to serve, not the server. A TCP or server-level check
  (KServe's classic pitfall) reports Ready while the model is missing or still
  loading, or when another version won Triton's version policy, and the Service
  would send requests that fail.
* liveness ``/v2/health/live``: only a hung server is restarted; a model that
  fails to load stays unready (visible in the status) instead of crash-looping.

Shutdown: a preStop sleep lets endpoint removal reach kube-proxy and gateways
before Triton stops accepting requests; Triton then drains in-flight requests
for up to ``--exit-timeout-secs``; the grace period covers both plus a margin.
"""

from __future__ import annotations

from typing import Any

from gantry.api.plan import DeploymentPlan, Owner
from gantry.api.spec import ModelDeploymentSpec
from gantry.render import labels as lbl
from gantry.render import placement
from gantry.render.model_source import (
    DEFAULT_FETCHERS,
    FetcherImages,
    ModelSource,
    model_env,
    model_source,
)
from gantry.render.security import container_security_context, pod_security_context

SERVER_CONTAINER = "server"
SHM_VOLUME = "dshm"
# The server's only writable place besides /dev/shm: its root filesystem is read-only.
TMP_VOLUME = "tmp"
PRESTOP_SLEEP_SECONDS = 10
DRAIN_SECONDS = 30
TERMINATION_GRACE_SECONDS = PRESTOP_SLEEP_SECONDS + DRAIN_SECONDS + 5
STARTUP_PERIOD_SECONDS = 5
STARTUP_FAILURE_THRESHOLD = 180


def server_args(spec: ModelDeploymentSpec, repository: str) -> list[str]:
    """tritonserver flags for the default runtime, then the user's extra args."""
    ports = spec.runtime.ports
    return [
        f"--model-repository={repository}",
        f"--http-port={ports.http}",
        f"--grpc-port={ports.grpc}",
        f"--metrics-port={ports.metrics}",
        # Ready only when every model is: the server never claims a half-loaded state.
        "--strict-readiness=true",
        f"--exit-timeout-secs={DRAIN_SECONDS}",
        # Latency quantiles for canary analysis (latency.quantile) need summaries; cheap.
        "--metrics-config=summary_latencies=true",
        *spec.runtime.args,
    ]


def _env(spec: ModelDeploymentSpec, repository: str) -> list[dict[str, str]]:
    ports = spec.runtime.ports
    generated = [
        *model_env(spec, repository),
        {"name": "GANTRY_HTTP_PORT", "value": str(ports.http)},
        {"name": "GANTRY_GRPC_PORT", "value": str(ports.grpc)},
        {"name": "GANTRY_METRICS_PORT", "value": str(ports.metrics)},
    ]
    # One entry per name (server-side apply keys env by name); later entries win,
    # as they would in the kubelet, so the user can override the generated ones.
    merged: dict[str, str] = {}
    for item in [*generated, *({"name": e.name, "value": e.value} for e in spec.runtime.env)]:
        merged.pop(item["name"], None)
        merged[item["name"]] = item["value"]
    return [{"name": k, "value": v} for k, v in merged.items()]


def _http_get(path: str) -> dict[str, Any]:
    return {"path": path, "port": "http", "scheme": "HTTP"}


def probes(spec: ModelDeploymentSpec) -> dict[str, dict[str, Any]]:
    """startupProbe, readinessProbe and livenessProbe of the server container."""
    model = spec.model
    return {
        "startupProbe": {
            "httpGet": _http_get("/v2/health/ready"),
            "periodSeconds": STARTUP_PERIOD_SECONDS,
            "timeoutSeconds": 3,
            "failureThreshold": STARTUP_FAILURE_THRESHOLD,
        },
        "readinessProbe": {
            "httpGet": _http_get(f"/v2/models/{model.name}/versions/{model.version}/ready"),
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": _http_get("/v2/health/live"),
            "periodSeconds": 10,
            # A busy server may answer slowly; three misses in a row is a hang.
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
    }


def server_container(spec: ModelDeploymentSpec, source: ModelSource) -> dict[str, Any]:
    """The inference server container."""
    runtime = spec.runtime
    if runtime.command:
        command, args = list(runtime.command), list(runtime.args)
    else:
        command, args = ["tritonserver"], server_args(spec, source.repository)
    ports = runtime.ports
    return {
        "name": SERVER_CONTAINER,
        "image": runtime.image,
        "command": command,
        "args": args,
        "env": _env(spec, source.repository),
        "ports": [
            {"name": "http", "containerPort": ports.http, "protocol": "TCP"},
            {"name": "grpc", "containerPort": ports.grpc, "protocol": "TCP"},
            {"name": "metrics", "containerPort": ports.metrics, "protocol": "TCP"},
        ],
        "resources": placement.resources(spec),
        "volumeMounts": [
            *(dict(m) for m in source.mounts),
            {"name": SHM_VOLUME, "mountPath": "/dev/shm"},
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
        ],
        **probes(spec),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        "securityContext": container_security_context(
            read_only_root=runtime.read_only_root_filesystem
        ),
        # A crash message (e.g. a model that fails to load) reaches the pod status.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def pod_template(
    owner: Owner,
    spec: ModelDeploymentSpec,
    plan: DeploymentPlan,
    *,
    fetchers: FetcherImages = DEFAULT_FETCHERS,
) -> dict[str, Any]:
    """The Deployment's ``spec.template`` for ``plan``'s revision."""
    source = model_source(spec, fetchers=fetchers)
    ports = spec.runtime.ports
    pod: dict[str, Any] = {
        "enableServiceLinks": False,
        # Neither Triton nor the fetchers talk to the Kubernetes API.
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": pod_security_context(),
    }
    if source.init_containers:
        pod["initContainers"] = [dict(c) for c in source.init_containers]
    pod["containers"] = [server_container(spec, source)]
    pod["volumes"] = [
        *(dict(v) for v in source.volumes),
        # Memory-backed and sized: Docker's 64 MiB default breaks Triton's shared-memory
        # tensors and Python backend. It counts against the pod's memory limit.
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": spec.runtime.shm_size}},
        {"name": TMP_VOLUME, "emptyDir": {}},
    ]
    if (aff := placement.affinity(spec)) is not None:
        pod["affinity"] = aff
    if tolerations := placement.tolerations(spec):
        pod["tolerations"] = tolerations
    if spec.placement.node_selector:
        pod["nodeSelector"] = dict(spec.placement.node_selector)
    if spec.placement.priority_class_name:
        pod["priorityClassName"] = spec.placement.priority_class_name
    return {
        "metadata": {
            "labels": lbl.pod_labels(owner, spec, plan),
            "annotations": {
                "kubectl.kubernetes.io/default-container": SERVER_CONTAINER,
                # For Prometheus setups that discover scrape targets by annotation.
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(ports.metrics),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": pod,
    }

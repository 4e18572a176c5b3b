"""Hand-written ModelDeployments as the API server returns them, for the plugin's tests.

Shaped after the status contract (operator/gantry/api/status.py, camelCase on the wire);
each builder returns a fresh dict that a test may change freely.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def cond(
    kind: str, status: str, reason: str, message: str = "", *, gen: int = 3, ago: float = 120
) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": gen,
        "lastTransitionTime": ts(ago),
    }


STEPS = [
    {"setWeight": 10},
    {"analysis": {"intervals": 2}},
    {"setWeight": 50},
    {"pause": {}},
]


def metric(name: str, value: float | None, threshold: str, verdict: str, message: str = "") -> Any:
    return {
        "name": name,
        "query": "",
        "value": value,
        "threshold": threshold,
        "verdict": verdict,
        "message": message,
    }


def run(ago: float, verdict: str, requests: float | None, *metrics: Any) -> dict[str, Any]:
    return {"time": ts(ago), "verdict": verdict, "requestCount": requests, "metrics": list(metrics)}


GOOD_RUN = run(
    30,
    "Successful",
    1200,
    metric("success-rate", 0.995, ">= 0.99", "Successful"),
    metric("latency-mean", 120.5, "<= 200ms", "Successful"),
)
THIN_RUN = run(
    60,
    "Inconclusive",
    3,
    metric("success-rate", None, ">= 0.99", "Inconclusive", "3 requests < 10"),
)


def stable(**over: Any) -> dict[str, Any]:
    return {
        "revision": "aaaaaaaaaa",
        "deployment": "resnet-aaaaaaaaaa",
        "modelVersion": "3",
        "image": "nvcr.io/nvidia/tritonserver:25.01-py3",
        "replicas": 2,
        "readyReplicas": 2,
        "modelReadyReplicas": 2,
        **over,
    }


def canary(**over: Any) -> dict[str, Any]:
    return {
        "revision": "bbbbbbbbbb",
        "deployment": "resnet-bbbbbbbbbb",
        "modelVersion": "4",
        "replicas": 1,
        "readyReplicas": 1,
        "modelReadyReplicas": 1,
        "phase": "Progressing",
        "reason": "",
        "stepIndex": 1,
        "weight": 10,
        "actualWeight": 33,
        "message": "analysis 1/2 intervals passed",
        "analysis": {
            "successes": 1,
            "failures": 0,
            "inconclusive": 0,
            "last": GOOD_RUN,
            "history": [THIN_RUN, GOOD_RUN],
        },
        **over,
    }


def md(
    *,
    status: dict[str, Any] | None = None,
    strategy: str = "canary",
    generation: int = 3,
    **meta: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"name": "resnet50", "uri": "s3://models/resnet50", "version": "4"},
    }
    spec["rollout"] = (
        {"strategy": "canary", "canary": {"steps": STEPS}}
        if strategy == "canary"
        else {"strategy": strategy}
    )
    obj: dict[str, Any] = {
        "apiVersion": "serving.gantry.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": "resnet",
            "namespace": "ml",
            "generation": generation,
            "creationTimestamp": ts(3600),
            "resourceVersion": "1234",
            **meta,
        },
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def ready_status(**over: Any) -> dict[str, Any]:
    return {
        "observedGeneration": 3,
        "phase": "Ready",
        "message": "",
        "replicas": 2,
        "readyReplicas": 2,
        "modelReadyReplicas": 2,
        "stable": stable(),
        "endpoints": {"http": "http://resnet.ml:8000", "grpc": "resnet.ml:8001"},
        "conditions": [
            cond("Ready", "True", "Serving", "2/2 replicas serve resnet50 version 3"),
            cond("Reconciling", "False", "RolloutComplete"),
            cond("Stalled", "False", "AsExpected"),
        ],
        **over,
    }


def canary_status(**over: Any) -> dict[str, Any]:
    status = ready_status(
        phase="Progressing",
        message="canary step 2/4 (analysis x2): 1/2 intervals passed",
        replicas=3,
        readyReplicas=3,
        modelReadyReplicas=3,
        canary=canary(),
        conditions=[
            cond("Ready", "False", "CanaryInProgress", "canary step 2/4", ago=90),
            cond("Available", "True", "MinimumReplicasAvailable", "3/3 replicas ready"),
            cond("Reconciling", "True", "CanaryInProgress", "canary step 2/4", ago=90),
            cond("Stalled", "False", "AsExpected"),
        ],
    )
    status.update(over)
    return status

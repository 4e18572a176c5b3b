"""What the demo deploys and how long it may take (pure: no I/O).

The first model is ``examples/cpu-runtime.yaml`` as a newcomer would apply it, given a canary
rollout policy and sized to fit beside anything else on the local nodes. Three model versions
follow each other:

1. the first model, brought to Ready;
2. a healthy new version, rolled out as a canary step by step and promoted;
3. a faulty version (loads fine, fails every real request), whose analysis fails: it is rolled
   back automatically, the stable never shrinking.

:data:`FULL` is ``make demo``; :data:`QUICK` is the same story sized for CI (one stable pod,
2 s analysis intervals) that ``e2e/test_demo.py`` runs so the demo cannot rot.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULTY", "FIRST", "FULL", "HEALTHY", "QUICK", "Plan", "manifest"]

FIRST = 1
HEALTHY = 2
FAULTY = 3


@dataclass(frozen=True)
class Plan:
    """One demo's sizes, steps and deadlines.

    Attributes:
        replicas: Stable pods; each is a real Triton process on this machine.
        interval_s: Seconds per analysis interval.
        steps: The canary steps (``setWeight`` by replica ratio, then analysis).
        load_rate: Requests per second the load generator sends over every ready pod.
        ready_timeout_s: Seconds for the first model to serve on every pod.
        canary_timeout_s: Seconds for each canary to be promoted or rolled back.
    """

    replicas: int
    interval_s: float
    steps: tuple[Mapping[str, Any], ...]
    load_rate: float = 10.0
    ready_timeout_s: float = 240.0
    canary_timeout_s: float = 240.0
    # A slow machine (2 shared cores) must not fail a healthy canary: the latency bound is
    # there to be shown in the analysis, far above what a toy model takes.
    latency_max_ms: float = 1000.0
    failure_limit: int = 1

    @property
    def load_seconds(self) -> float:
        """The load generator's own bound: both canaries with their deadlines."""
        return 2 * self.canary_timeout_s + 30.0

    def analysis(self) -> dict[str, Any]:
        """Judged on the pods' own Triton metrics (the ``scrape`` provider: no Prometheus)."""
        return {
            "interval": f"{self.interval_s:g}s",
            "failureLimit": self.failure_limit,
            "inconclusiveLimit": 3,
            "minRequestCount": 3,
            "successRate": {"min": 0.99},
            "latency": {"maxMs": self.latency_max_ms},
            "provider": {"type": "scrape"},
        }


FULL = Plan(
    replicas=2,
    interval_s=5.0,
    steps=(
        {"setWeight": 34},  # 1 canary pod beside 2 stable: 33% of the traffic
        {"analysis": {"intervals": 2}},
        {"setWeight": 50},  # 2 beside 2
        {"analysis": {"intervals": 2}},
    ),
)

QUICK = Plan(
    replicas=1,
    interval_s=2.0,
    steps=({"setWeight": 50}, {"analysis": {"intervals": 2}}),
    ready_timeout_s=180.0,
    canary_timeout_s=150.0,
)


def manifest(
    example: Mapping[str, Any], *, namespace: str, version: int, plan: Plan
) -> dict[str, Any]:
    """The example ModelDeployment at model ``version``, with the plan's canary policy.

    Small requests and the GPU taint tolerated: the pods only need a place on the local
    (simulated) nodes, whichever has room, while their model is served by a local process.
    """
    md = copy.deepcopy(dict(example))
    md["metadata"] = {**md.get("metadata", {}), "namespace": namespace}
    spec = md.setdefault("spec", {})
    spec["model"] = {**spec.get("model", {}), "version": str(version)}
    spec["replicas"] = plan.replicas
    spec["resources"] = {**spec.get("resources", {}), "cpu": "100m", "memory": "256Mi"}
    spec["placement"] = {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}
    spec["rollout"] = {
        "strategy": "canary",
        "canary": {"steps": [dict(s) for s in plan.steps], "analysis": plan.analysis()},
    }
    return md

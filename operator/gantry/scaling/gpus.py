"""GPUs held by running pods, and GPU-seconds between two observations (pure).

A pod holds the ``nvidia.com/gpu`` or ``nvidia.com/mig-*`` limits of its
containers from when it runs until it stops. ``gantry_gpu_seconds_total`` is
integrated from the pods seen at each reconcile: the allocation seen at one
reconcile is taken to hold until the next (a left Riemann sum). A pod that
starts or stops is a watch event that queues a reconcile of its ModelDeployment,
so each is counted from about when it happened (off by the queue's delay), not
from the slow re-probe of a settled object (``handlers/cadence.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gantry.api.status import GpuStatus
from gantry.render.labels import REVISION

GPU = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"


def _count(raw: object) -> int:
    try:
        return int(str(raw))
    except ValueError:
        return 0  # extended resources are whole numbers; anything else holds none


def pod_gpus(pod: Mapping[str, Any]) -> dict[str, int]:
    """GPU resources a pod's containers hold, by resource name."""
    held: dict[str, int] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        limits = (c.get("resources") or {}).get("limits") or {}
        for name, raw in limits.items():
            if name == GPU or name.startswith(MIG_PREFIX):
                held[name] = held.get(name, 0) + _count(raw)
    return held


def _running(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and not (
        pod.get("metadata") or {}
    ).get("deletionTimestamp")


Key = tuple[str, str]  # (revision, resource)


@dataclass(frozen=True)
class Allocation:
    """GPUs held at one time, by (revision, resource)."""

    time: datetime
    held: Mapping[Key, int]


def allocation(pods: Iterable[Mapping[str, Any]], now: datetime) -> Allocation:
    """What the running pods hold now."""
    held: dict[Key, int] = {}
    for pod in pods:
        if not _running(pod):
            continue
        rev = str(((pod.get("metadata") or {}).get("labels") or {}).get(REVISION, ""))
        for resource, n in pod_gpus(pod).items():
            held[(rev, resource)] = held.get((rev, resource), 0) + n
    return Allocation(now, held)


def accrued(previous: Allocation | None, current: Allocation) -> dict[Key, float]:
    """GPU-seconds held since ``previous``: its allocation times the time elapsed."""
    if previous is None:
        return {}
    elapsed = (current.time - previous.time).total_seconds()
    if elapsed <= 0:
        return {}
    return {k: n * elapsed for k, n in previous.held.items() if n > 0}


def gpu_status(current: Allocation) -> GpuStatus:
    """status.gpus: the total held, and the resources (comma-separated when several)."""
    totals: dict[str, int] = {}
    for (_, resource), n in current.held.items():
        totals[resource] = totals.get(resource, 0) + n
    return GpuStatus(allocated=sum(totals.values()), resource=",".join(sorted(totals)))

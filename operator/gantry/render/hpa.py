"""The autoscaling/v2 HorizontalPodAutoscaler.

``cpu`` is a Resource metric (average utilization percent of the CPU request).
The Triton metrics are per-pod custom metrics (``type: Pods``, ``AverageValue``)
that a metrics adapter must serve under these names; with prometheus-adapter::

    rules:
    - seriesQuery: 'nv_inference_queue_duration_us{namespace!="",pod!=""}'
      resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
      name: {as: nv_inference_queue_duration_ms}
      # Mean queue time per request in ms over the last minute.
      metricsQuery: >-
        sum(rate(nv_inference_queue_duration_us{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)
        / clamp_min(sum(rate(nv_inference_request_success{<<.LabelMatchers>>}[1m]))
        by (<<.GroupBy>>), 1) / 1000
    - seriesQuery: 'nv_inference_pending_request_count{namespace!="",pod!=""}'
      resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
      metricsQuery: sum(nv_inference_pending_request_count{<<.LabelMatchers>>}) by (<<.GroupBy>>)
    - seriesQuery: 'nv_gpu_utilization{namespace!="",pod!=""}'
      resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
      # Triton reports 0..1 per GPU; expose percent so targets read like cpu's.
      metricsQuery: avg(nv_gpu_utilization{<<.LabelMatchers>>}) by (<<.GroupBy>>) * 100

Without ``scaling.behavior`` a default suited to slow GPU cold starts applies:
scale up at most 2 pods (or 50%) per 2 minutes, because a new pod needs minutes
to load its model while the metric stays high, and an unrestricted HPA keeps
adding pods for the whole load time; scale down one pod per 2 minutes after
10 minutes of stability, because a replica given up too eagerly costs the same
minutes to get back.
"""

from __future__ import annotations

import copy
from typing import Any

from gantry.api.plan import Owner
from gantry.api.spec import ModelDeploymentSpec, ScalingMetricType
from gantry.render import labels as lbl
from gantry.render import names
from gantry.render.ownership import child_metadata

# The metric names a metrics adapter serves for each scaling.metric.type (see above).
POD_METRIC_NAMES = {
    ScalingMetricType.QUEUE_TIME_MS: "nv_inference_queue_duration_ms",
    ScalingMetricType.INFLIGHT: "nv_inference_pending_request_count",
    ScalingMetricType.GPU_UTILIZATION: "nv_gpu_utilization",
}

DEFAULT_BEHAVIOR: dict[str, Any] = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 2, "periodSeconds": 120},
            {"type": "Percent", "value": 50, "periodSeconds": 120},
        ],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 600,
        "selectPolicy": "Min",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
    },
}


def quantity(value: float) -> str:
    """A Kubernetes quantity for a metric target: ``50`` -> ``"50"``, ``0.25`` -> ``"250m"``."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


def metric(spec: ModelDeploymentSpec) -> dict[str, Any]:
    """The HPA metric for ``spec.scaling.metric``."""
    chosen = spec.scaling.metric
    if chosen.type is ScalingMetricType.CPU:
        return {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": round(chosen.target)},
            },
        }
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": POD_METRIC_NAMES[chosen.type]},
            "target": {"type": "AverageValue", "averageValue": quantity(chosen.target)},
        },
    }


def scale_target_ref(deployment: str) -> dict[str, str]:
    """The ``scaleTargetRef`` of an autoscaler sizing ``deployment``."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment}


def hpa_name(owner: Owner) -> str:
    """Name of the HorizontalPodAutoscaler."""
    return names.md_child_name(owner.name)


def render_hpa(owner: Owner, spec: ModelDeploymentSpec, target_deployment: str) -> dict[str, Any]:
    """The HorizontalPodAutoscaler scaling ``target_deployment`` within the spec's bounds."""
    scaling = spec.scaling
    behavior = copy.deepcopy(scaling.behavior if scaling.behavior else DEFAULT_BEHAVIOR)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_metadata(owner, hpa_name(owner), lbl.common_labels(owner)),
        "spec": {
            "scaleTargetRef": scale_target_ref(target_deployment),
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [metric(spec)],
            "behavior": behavior,
        },
    }

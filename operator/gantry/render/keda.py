"""KEDA's ScaledObject (``scaling.provider: keda``).

KEDA turns the ScaledObject into its own HorizontalPodAutoscaler (named
``keda-hpa-<name>``) fed by its metrics adapter, and scales the Deployment
between 0 and 1 itself (activation). The trigger is KEDA's ``prometheus``
scaler on the same Triton presets as the prometheus-adapter rules in
``gantry.render.hpa``, written for KEDA's default ``AverageValue`` metric type:
the query returns the *sum over the stable's pods* of each pod's value, and the
HPA divides by the pod count, so ``threshold`` is the per-pod target.

Scale to zero (``minReplicas: 0``): KEDA scales to 0 once the query has been at
or below ``activationThreshold`` for ``cooldownPeriod``. Scaling back *from*
zero needs a signal that exists while no pod runs, and these metrics come from
the pods: with no pod there is no queue to measure, and a request sent to the
Service meets no endpoint and fails rather than waiting. Scale from zero
therefore needs something in front that holds requests and exports their count
(KEDA's HTTP add-on interceptor, or a gateway's queue metric) as the trigger,
and clients that retry while a pod loads its model (minutes for a large one).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from gantry.api.plan import Owner
from gantry.api.spec import ModelDeploymentSpec, ScalingMetricType
from gantry.render import labels as lbl
from gantry.render.hpa import DEFAULT_BEHAVIOR, hpa_name, scale_target_ref
from gantry.render.ownership import child_metadata

API_VERSION = "keda.sh/v1alpha1"
KIND = "ScaledObject"


def plain_number(value: float) -> str:
    """``value`` as KEDA's trigger metadata needs it: a plain decimal, never a quantity.

    KEDA parses ``threshold`` and ``activationThreshold`` as float64 (``"2500m"`` makes the
    ScaledObject fail with "unable to set param threshold"), and no exponent either:
    ``2.5`` -> ``"2.5"``, ``50.0`` -> ``"50"``, ``1e-05`` -> ``"0.00001"``.
    """
    if float(value).is_integer():
        return str(int(value))
    return format(Decimal(repr(float(value))), "f")


def pod_matchers(namespace: str, deployment: str) -> str:
    """PromQL label matchers for the pods of one Deployment (``<name>-<hash>-<suffix>``)."""
    return f'namespace="{namespace}",pod=~"{deployment}-[a-z0-9]+-[a-z0-9]+"'


def query(metric: ScalingMetricType, namespace: str, deployment: str) -> str:
    """The sum over the Deployment's pods of each pod's value of ``metric``.

    Raises:
        ValueError: cpu, which KEDA reads with its cpu scaler, not Prometheus.
    """
    m = pod_matchers(namespace, deployment)
    if metric is ScalingMetricType.QUEUE_TIME_MS:
        return (
            f"sum(sum by (pod) (rate(nv_inference_queue_duration_us{{{m}}}[1m])) / "
            f"clamp_min(sum by (pod) (rate(nv_inference_request_success{{{m}}}[1m])), 1) "
            "/ 1000)"
        )
    if metric is ScalingMetricType.INFLIGHT:
        return f"sum(nv_inference_pending_request_count{{{m}}})"
    if metric is ScalingMetricType.GPU_UTILIZATION:
        return f"sum(avg by (pod) (nv_gpu_utilization{{{m}}}) * 100)"
    raise ValueError(f"scaling.metric.type {metric.value} has no Prometheus preset for KEDA")


def _trigger(owner: Owner, spec: ModelDeploymentSpec, target: str) -> dict[str, Any]:
    chosen, keda = spec.scaling.metric, spec.scaling.keda
    assert keda is not None  # the spec refuses provider keda without it
    if chosen.type is ScalingMetricType.CPU:
        return {
            "type": "cpu",
            "metricType": "Utilization",
            "metadata": {"value": str(round(chosen.target))},
        }
    return {
        "type": "prometheus",
        "metadata": {
            "serverAddress": keda.server_address,
            "query": query(chosen.type, owner.namespace, target),
            "threshold": plain_number(chosen.target),
            "activationThreshold": plain_number(keda.activation_threshold),
        },
    }


def render_scaled_object(
    owner: Owner, spec: ModelDeploymentSpec, target_deployment: str
) -> dict[str, Any]:
    """The ScaledObject scaling ``target_deployment`` within the spec's bounds."""
    scaling = spec.scaling
    keda = scaling.keda
    assert keda is not None  # the spec refuses provider keda without it
    behavior = copy.deepcopy(scaling.behavior if scaling.behavior else DEFAULT_BEHAVIOR)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": child_metadata(owner, hpa_name(owner), lbl.common_labels(owner)),
        "spec": {
            "scaleTargetRef": scale_target_ref(target_deployment),
            "pollingInterval": keda.polling_interval,
            "cooldownPeriod": keda.cooldown_period,
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior}},
            "triggers": [_trigger(owner, spec, target_deployment)],
        },
    }

"""The size a per-pod metric asks for: the HPA's replica calculator (pure).

A transcription of ``calcPlainMetricReplicas`` in k8s.io/kubernetes
``pkg/controller/podautoscaler/replica_calculator.go`` for an ``AverageValue``
pods metric, with Gantry's notion of readiness:

* *serving* pods (model ready) with a value are what the ratio is computed on:
  ``ratio = mean(value) / target``;
* *unready* pods (Pending, starting, or loading their model: the HPA's unready
  pods) never count with their own value; on a scale-up they count as 0, so
  capacity that is still loading is not taken for idle capacity and not for
  serving capacity either;
* *missing* pods (serving, but no metric: the scrape failed) count as 0 on a
  scale-up and as exactly the target on a scale-down;
* a change within the tolerance (10%), or one whose direction flips once the
  unready and missing pods are filled in, keeps the current size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

TOLERANCE = 0.1


@dataclass(frozen=True)
class Computed:
    """What the metric asks for.

    Attributes:
        replicas: The raw recommendation (before behavior and bounds).
        average: Mean of the values of the pods that gave one.
    """

    replicas: int
    average: float


def compute(
    values: Sequence[float],
    *,
    unready: int,
    missing: int,
    current: int,
    target: float,
    tolerance: float = TOLERANCE,
) -> Computed | None:
    """The HPA's recommendation, or None when no pod gave a value (nothing to go on).

    Args:
        values: The metric of each serving pod that gave one.
        unready: Pods not serving yet (Pending, starting, loading the model).
        missing: Serving pods that gave no value.
        current: The current size (the Deployment's spec.replicas).
        target: The per-pod target.
        tolerance: Relative change ignored.
    """
    if not values:
        return None
    average = sum(values) / len(values)
    ratio = average / target
    up_with_unready = unready > 0 and ratio > 1.0
    if not up_with_unready and missing == 0:
        if abs(1.0 - ratio) <= tolerance:
            return Computed(current, average)
        return Computed(math.ceil(ratio * len(values)), average)
    filled = list(values)
    if missing:
        filled += [target if ratio < 1.0 else 0.0] * missing
    if up_with_unready:
        filled += [0.0] * unready
    new_ratio = sum(filled) / len(filled) / target
    flipped = (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio)
    if abs(1.0 - new_ratio) <= tolerance or flipped:
        return Computed(current, average)
    replicas = math.ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return Computed(current, average)
    return Computed(replicas, average)

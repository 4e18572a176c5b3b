"""The policy/v1 PodDisruptionBudget.

Created only when the model may run two or more pods (fixed replicas >= 2, or
an autoscaler whose maximum is >= 2): with a single replica a budget either
blocks node drains forever (``minAvailable: 1``) or protects nothing
(``maxUnavailable: 1``). ``maxUnavailable: 1`` rather than a ``minAvailable``
keeps drains moving at any scale, and ``unhealthyPodEvictionPolicy:
AlwaysAllow`` lets a drain evict pods that are not serving anyway (e.g. a
model that failed to load), which would otherwise count against the budget.
"""

from __future__ import annotations

from typing import Any

from gantry.api.plan import Owner
from gantry.api.spec import ModelDeploymentSpec
from gantry.render import labels as lbl
from gantry.render import names
from gantry.render.ownership import child_metadata

MIN_REPLICAS_FOR_PDB = 2


def wants_pdb(spec: ModelDeploymentSpec) -> bool:
    """Whether ``spec`` may run enough pods for a disruption budget to mean anything."""
    most = spec.scaling.max_replicas if spec.scaling.autoscaled else spec.desired_replicas()
    return most >= MIN_REPLICAS_FOR_PDB


def pdb_name(owner: Owner) -> str:
    """Name of the PodDisruptionBudget."""
    return names.md_child_name(owner.name)


def render_pdb(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any] | None:
    """The PodDisruptionBudget over every revision's pods, or None (see module docs)."""
    if not wants_pdb(spec):
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(owner, pdb_name(owner), lbl.common_labels(owner)),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": lbl.selector_labels(owner)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }

"""The apps/v1 Deployment of one revision.

Rolling updates in place (``rollout.strategy: rolling``, or an operator upgrade
that changes the template) use ``maxSurge: 1, maxUnavailable: 0``: serving
capacity never drops while a replacement spends minutes loading its model, at
the price of one spare GPU slot. Where no spare GPU exists, the surge pod stays
Pending, the Deployment exceeds ``progressDeadlineSeconds`` and the status says
``Scheduled=False, reason=InsufficientGPU`` -- a visible stall rather than a
silent capacity loss (``maxUnavailable: 1`` would take a single-replica model
offline for the whole model load).
"""

from __future__ import annotations

from typing import Any

from gantry.api.plan import DeploymentPlan, Owner
from gantry.api.spec import ModelDeploymentSpec
from gantry.render import labels as lbl
from gantry.render.model_source import DEFAULT_FETCHERS, FetcherImages
from gantry.render.ownership import child_metadata
from gantry.render.pod import pod_template

MAX_SURGE = 1
MAX_UNAVAILABLE = 0
# Each revision has its own Deployment; in-place history only serves `kubectl rollout undo`.
REVISION_HISTORY_LIMIT = 3


def render_deployment(
    owner: Owner,
    spec: ModelDeploymentSpec,
    plan: DeploymentPlan,
    *,
    fetchers: FetcherImages = DEFAULT_FETCHERS,
) -> dict[str, Any]:
    """The full Deployment for ``plan`` (for a plan with ``apply_template=True``).

    ``spec.replicas`` is never part of the applied manifest; the reconciler sets
    it through the ``/scale`` subresource (:func:`render_scale`) under a separate
    field manager. Were it applied, the apply manager would own it, and the first
    apply without it (an autoscaler taking over) would reset the Deployment to
    one replica before the autoscaler acts: pods killed, models reloaded.

    Args:
        owner: The owning ModelDeployment.
        spec: Its spec (describes ``plan.revision``).
        plan: Which Deployment, revision, role and size.
        fetchers: Images of the model fetch init container.
    """
    body: dict[str, Any] = {
        "selector": {"matchLabels": lbl.deployment_selector(owner, plan)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": MAX_SURGE, "maxUnavailable": MAX_UNAVAILABLE},
        },
        "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
        "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
        "template": pod_template(owner, spec, plan, fetchers=fetchers),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(owner, plan.name, lbl.deployment_labels(owner, spec, plan)),
        "spec": body,
    }


def render_scale(plan: DeploymentPlan) -> dict[str, Any] | None:
    """The body for the ``/scale`` subresource of a Deployment, or None when not scaled.

    For ``apply_template=False`` plans (an older stable revision during a canary)
    only the size may change. Such a Deployment must never be server-side applied
    with a partial manifest under the operator's field manager: fields that manager
    owned and no longer sends (the whole pod template) would be removed.
    """
    if plan.replicas is None:
        return None
    return {"spec": {"replicas": plan.replicas}}

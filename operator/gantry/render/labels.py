"""Labels of every child; their values are fitted by :mod:`gantry.render.names`.

Which labels go where, and why:

* Pods of every revision share ``selector_labels`` (instance, component,
  managed-by): the main Service and the PodDisruptionBudget select on them.
* Each Deployment's immutable selector adds ``serving.gantry.dev/deployment``
  (its own name) rather than the revision, so a rolling update in place may
  change the pod template's revision label.
* ``serving.gantry.dev/role`` (stable/canary) is on the Deployment's metadata
  only, never on the pod template: promoting a canary relabels one object and
  restarts no pod.
"""

from __future__ import annotations

from gantry.api.plan import DeploymentPlan, Owner
from gantry.api.spec import GROUP, ModelDeploymentSpec
from gantry.render.names import label_value

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
APP_VERSION = "app.kubernetes.io/version"
REVISION = f"{GROUP}/revision"
DEPLOYMENT = f"{GROUP}/deployment"
ROLE = f"{GROUP}/role"

COMPONENT_PREDICTOR = "predictor"
PART_OF_GANTRY = "gantry"
MANAGED_BY_GANTRY = "gantry"


def selector_labels(owner: Owner) -> dict[str, str]:
    """Labels shared by the pods of every revision (Service and PDB selector)."""
    return {
        INSTANCE: label_value(owner.name),
        COMPONENT: COMPONENT_PREDICTOR,
        MANAGED_BY: MANAGED_BY_GANTRY,
    }


def selector_string(owner: Owner) -> str:
    """``selector_labels`` as a label selector string (``status.selector`` for /scale)."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(owner).items()))


def common_labels(owner: Owner) -> dict[str, str]:
    """Labels every child carries."""
    return {
        NAME: label_value(owner.name),
        **selector_labels(owner),
        PART_OF: PART_OF_GANTRY,
    }


def deployment_selector(owner: Owner, plan: DeploymentPlan) -> dict[str, str]:
    """The (immutable) selector of one Deployment.

    ``plan.name`` is already a fitted Deployment name (``names.deployment_name``),
    itself a valid label value: the label *is* the name, so the pods, the
    Deployment and every lookup by this label join on one string.
    """
    return {**selector_labels(owner), DEPLOYMENT: plan.name}


def pod_labels(owner: Owner, spec: ModelDeploymentSpec, plan: DeploymentPlan) -> dict[str, str]:
    """Labels of the pod template: no role, so promotion never restarts pods."""
    return {
        **common_labels(owner),
        APP_VERSION: label_value(spec.model.version),
        REVISION: label_value(plan.revision),
        DEPLOYMENT: plan.name,
    }


def deployment_labels(
    owner: Owner, spec: ModelDeploymentSpec, plan: DeploymentPlan
) -> dict[str, str]:
    """Labels of the Deployment object itself: the pod labels plus the role."""
    return {**pod_labels(owner, spec, plan), ROLE: plan.role.value}

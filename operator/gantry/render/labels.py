"""Names and labels of every child, within Kubernetes' length and charset limits.

Label values and DNS labels (Service names) are at most 63 characters, while a
ModelDeployment name may be a 253-character DNS subdomain. Anything too long is
cut and suffixed with a short hash of the whole value, so distinct inputs stay
distinct and the same input always gives the same output.

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

import hashlib
import re

from gantry.api.plan import DeploymentPlan, Owner
from gantry.api.spec import GROUP, ModelDeploymentSpec

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

MAX_LABEL_VALUE = 63
MAX_DNS_LABEL = 63
_HASH_LENGTH = 8
_NOT_DNS = re.compile(r"[^a-z0-9-]")


def short_hash(text: str, *, length: int = _HASH_LENGTH) -> str:
    """A stable hex digest prefix of ``text`` (the same in every process)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit(value: str, *, limit: int = MAX_LABEL_VALUE) -> str:
    """Returns ``value`` when it fits in ``limit``, else a cut prefix plus a hash of all of it.

    The prefix loses trailing ``-``, ``_`` and ``.`` so the result still ends in
    an alphanumeric character, as label values and DNS labels must.
    """
    if len(value) <= limit:
        return value
    digest = short_hash(value)
    head = value[: limit - len(digest) - 1].rstrip("-_.")
    return f"{head}-{digest}" if head else digest


def dns_label(name: str) -> str:
    """A DNS-1035 label (Service names) derived from a DNS-1123 subdomain.

    Dots become dashes, a leading digit gets an ``md-`` prefix (Service names must
    start with a letter), and the result is cut to 63 characters with a hash.
    Names that are already valid labels come back unchanged.
    """
    label = _NOT_DNS.sub("-", name.lower())
    if not label[:1].isalpha():
        label = f"md-{label}"
    if label == name:
        return fit(label, limit=MAX_DNS_LABEL)
    # The name changed, so hash the original to keep e.g. "a.b" and "a-b" apart.
    if len(label) <= MAX_DNS_LABEL - _HASH_LENGTH - 1:
        return f"{label}-{short_hash(name)}"
    return fit(f"{label}-{short_hash(name)}", limit=MAX_DNS_LABEL)


def deployment_name(owner_name: str, revision: str) -> str:
    """The conventional Deployment name of one revision: ``<md>-<revision>``, at most 63 chars."""
    return fit(f"{owner_name}-{revision}", limit=MAX_DNS_LABEL)


def selector_labels(owner: Owner) -> dict[str, str]:
    """Labels shared by the pods of every revision (Service and PDB selector)."""
    return {
        INSTANCE: fit(owner.name),
        COMPONENT: COMPONENT_PREDICTOR,
        MANAGED_BY: MANAGED_BY_GANTRY,
    }


def selector_string(owner: Owner) -> str:
    """``selector_labels`` as a label selector string (``status.selector`` for /scale)."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(owner).items()))


def common_labels(owner: Owner) -> dict[str, str]:
    """Labels every child carries."""
    return {
        NAME: fit(owner.name),
        **selector_labels(owner),
        PART_OF: PART_OF_GANTRY,
    }


def deployment_selector(owner: Owner, plan: DeploymentPlan) -> dict[str, str]:
    """The (immutable) selector of one Deployment."""
    return {**selector_labels(owner), DEPLOYMENT: fit(plan.name)}


def pod_labels(owner: Owner, spec: ModelDeploymentSpec, plan: DeploymentPlan) -> dict[str, str]:
    """Labels of the pod template: no role, so promotion never restarts pods."""
    return {
        **common_labels(owner),
        APP_VERSION: fit(spec.model.version),
        REVISION: fit(plan.revision),
        DEPLOYMENT: fit(plan.name),
    }


def deployment_labels(
    owner: Owner, spec: ModelDeploymentSpec, plan: DeploymentPlan
) -> dict[str, str]:
    """Labels of the Deployment object itself: the pod labels plus the role."""
    return {**pod_labels(owner, spec, plan), ROLE: plan.role.value}

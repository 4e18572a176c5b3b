"""What a manifest would produce, without a cluster (``gantry render``).

For GitOps review: the children a brand-new ModelDeployment gets on its first
reconcile, rendered by the same pure code the operator runs.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from gantry.api.plan import Owner
from gantry.api.spec import ModelDeploymentSpec
from gantry.api.status import ModelDeploymentStatus
from gantry.render import render_children, render_scale, revision
from gantry.rollout import Observations, decide

PREVIEW_UID = "00000000-0000-0000-0000-000000000000"


def preview_children(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Children of ``manifest`` as first created, sizes included.

    Raises:
        pydantic.ValidationError: the spec is invalid (the error names the field).
    """
    meta = manifest.get("metadata") or {}
    spec = ModelDeploymentSpec.model_validate(manifest.get("spec") or {})
    owner = Owner(
        name=str(meta.get("name", "unnamed")),
        namespace=str(meta.get("namespace", "default")),
        uid=PREVIEW_UID,
        generation=1,
    )
    decision = decide(
        spec,
        ModelDeploymentStatus(),
        Observations(),
        datetime.datetime.now(datetime.UTC),
        desired_revision=revision(spec),
        md_name=owner.name,
    )
    children = render_children(owner, spec, decision.plan)
    sizes = {d.name: render_scale(d) for d in decision.plan.deployments}
    for child in children:
        scale = sizes.get(child["metadata"]["name"]) if child["kind"] == "Deployment" else None
        if scale is not None:
            # Shown for review; the operator sets it through /scale, not by apply.
            child["spec"] = {"replicas": scale["spec"]["replicas"], **child["spec"]}
    return children

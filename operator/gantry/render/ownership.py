"""ownerReferences and object metadata shared by every child."""

from __future__ import annotations

from typing import Any

from gantry.api.plan import Owner


def owner_references(owner: Owner) -> list[dict[str, Any]]:
    """The single controller reference to the owning ModelDeployment.

    ``controller: true`` marks Gantry as the one controller of the child (other
    controllers back off), and ``blockOwnerDeletion: true`` makes a foreground
    deletion of the ModelDeployment wait until its children are gone.
    """
    return [
        {
            "apiVersion": owner.api_version,
            "kind": owner.kind,
            "name": owner.name,
            "uid": owner.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def child_metadata(
    owner: Owner,
    name: str,
    labels: dict[str, str],
    *,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``metadata`` of a namespaced child owned by ``owner``."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": dict(labels),
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    meta["ownerReferences"] = owner_references(owner)
    return meta

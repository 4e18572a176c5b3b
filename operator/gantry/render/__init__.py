"""Pure renderers: a ModelDeployment spec and plan in, child manifests out.

Nothing here does I/O or mutates its inputs; every function returns fresh plain
dicts ready for server-side apply.
"""

from gantry.render.children import CHILD_KINDS, ChildKind, render_children
from gantry.render.deployment import render_deployment, render_scale
from gantry.render.hpa import render_hpa
from gantry.render.httproute import render_httproute, uses_gateway_api
from gantry.render.labels import selector_labels, selector_string
from gantry.render.model_source import DEFAULT_FETCHERS, FetcherImages
from gantry.render.names import deployment_name
from gantry.render.ownership import owner_references
from gantry.render.pdb import render_pdb
from gantry.render.revision import revision
from gantry.render.service import (
    render_revision_service,
    render_service,
    revision_service_name,
    service_name,
)

__all__ = [
    "CHILD_KINDS",
    "DEFAULT_FETCHERS",
    "ChildKind",
    "FetcherImages",
    "deployment_name",
    "owner_references",
    "render_children",
    "render_deployment",
    "render_hpa",
    "render_httproute",
    "render_pdb",
    "render_revision_service",
    "render_scale",
    "render_service",
    "revision",
    "revision_service_name",
    "selector_labels",
    "selector_string",
    "service_name",
    "uses_gateway_api",
]

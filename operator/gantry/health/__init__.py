"""Model health of inference servers, read through the KServe v2 API.

``probe_endpoints`` asks each server whether it and the model version are
ready and, when the model is not, why (Triton's repository index);
``summarize`` folds the answers into one line for a status condition.

It speaks KServe v2 itself over aiohttp, the operator's one HTTP stack (no
tritonclient: see ``probe``); it imports neither kopf, nor a Kubernetes client,
nor torch.
"""

from gantry.health.pool import PoolStats, ProbePool, ProbeTarget
from gantry.health.probe import (
    ACCESS_TOKEN_HEADER,
    SEVERITY,
    ModelProbe,
    ProbeReason,
    probe_endpoint,
    probe_endpoints,
)
from gantry.health.summary import ProbeSummary, summarize

__all__ = [
    "ACCESS_TOKEN_HEADER",
    "SEVERITY",
    "ModelProbe",
    "PoolStats",
    "ProbePool",
    "ProbeReason",
    "ProbeSummary",
    "ProbeTarget",
    "probe_endpoint",
    "probe_endpoints",
    "summarize",
]

"""The revision: a stable hash of everything that shapes a pod.

Two specs that would run identical pods have the same revision; a change to the
model, runtime, resources or placement gives a new one (and so a rollout),
while replicas, scaling and rollout settings never do. The hash is taken over
canonical JSON of the *validated* model with every value equal to its default
left out, so a field left out and the same field spelled with its default value
hash the same, and the value is identical across processes and Python versions
(no ``hash()`` salt).

Leaving defaults out is what keeps an operator upgrade from starting a rollout of
every model: a field added to the API with a default (``runtime.readOnlyRootFilesystem``
was one) would otherwise change the revision of every existing ModelDeployment. An
upgrade that renders the same inputs into a different pod template keeps the
revision too: the Deployment then rolls its pods in place.
"""

from __future__ import annotations

import hashlib
import json

from gantry.api.spec import ModelDeploymentSpec

REVISION_LENGTH = 10
# The spec sections that reach the pod template; anything else must not.
POD_TEMPLATE_INPUTS = frozenset({"model", "runtime", "resources", "placement"})


def revision(spec: ModelDeploymentSpec) -> str:
    """Returns the 10-hex-character revision of ``spec``'s pod template inputs."""
    inputs = spec.model_dump(
        mode="json", by_alias=True, include=set(POD_TEMPLATE_INPUTS), exclude_defaults=True
    )
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:REVISION_LENGTH]

"""Security contexts that satisfy the restricted Pod Security Standard.

NVIDIA's Triton images ship a ``triton-server`` user with uid/gid 1000 but start
as root by default, and ``runAsNonRoot`` cannot check a non-numeric or root
image user; so pods run explicitly as 1000:1000. ``fsGroup`` makes the model
and scratch volumes writable for that user. GPU access needs no privileges: the
NVIDIA device plugin injects the device nodes into the container.

Every container's root filesystem is read-only unless the spec says otherwise
(``runtime.readOnlyRootFilesystem: false``, for a custom image that writes under its
root: the restricted Pod Security Standard does not require it, so it stays a choice
and not an exception). What the servers write goes to
volumes: Triton writes only under ``/tmp`` (Python backend execution environments,
cloud-storage model copies) and ``/dev/shm`` (Python backend and shared-memory
tensors); the reference runtime (PyTriton) keeps its workspace and generated model
repository in a ``tempfile`` directory, i.e. ``/tmp``. The rendered pod mounts an
emptyDir on both. Python's bytecode cache is skipped silently where it cannot be
written. The pod's ``command`` replaces the image's entrypoint, so entrypoint
scripts that write under the root never run.
"""

from __future__ import annotations

from typing import Any

RUN_AS_USER = 1000
RUN_AS_GROUP = 1000


def pod_security_context() -> dict[str, Any]:
    """The pod-level securityContext (a fresh dict on every call)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "fsGroup": RUN_AS_GROUP,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(*, read_only_root: bool = True) -> dict[str, Any]:
    """A container securityContext (a fresh dict on every call)."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
    }

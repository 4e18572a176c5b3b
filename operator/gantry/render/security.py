"""Security contexts that satisfy the restricted Pod Security Standard.

NVIDIA's Triton images ship a ``triton-server`` user with uid/gid 1000 but start
as root by default, and ``runAsNonRoot`` cannot check a non-numeric or root
image user; so pods run explicitly as 1000:1000. ``fsGroup`` makes the model
and scratch volumes writable for that user. GPU access needs no privileges: the
NVIDIA device plugin injects the device nodes into the container.
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


def container_security_context(*, read_only_root: bool = False) -> dict[str, Any]:
    """A container securityContext (a fresh dict on every call).

    Args:
        read_only_root: Mount the image read-only; the server keeps a writable root
            because Triton's entrypoint and Python backends write under it.
    """
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    if read_only_root:
        context["readOnlyRootFilesystem"] = True
    return context

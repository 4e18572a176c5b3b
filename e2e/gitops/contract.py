"""What every client must say of a ModelDeployment in each state (the README's contract).

Shared by the e2e run that records real objects (e2e/test_status_contract.py) and the
unit tests that judge the recorded ones with kstatus and Argo CD's engine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expect:
    """What every client must say in one state."""

    phase: str
    ready: tuple[str, str | None]  # Ready's status and reason (None: any)
    reconciling: str
    stalled: str
    kstatus: str
    argocd: str


EXPECT: dict[str, Expect] = {
    "first-reconcile": Expect(
        "Progressing", ("False", None), "True", "False", "InProgress", "Progressing"
    ),
    "ready": Expect("Ready", ("True", "Ready"), "False", "False", "Current", "Healthy"),
    "scale-up": Expect(
        "Progressing", ("False", None), "True", "False", "InProgress", "Progressing"
    ),
    "canary-step": Expect(
        "Progressing", ("False", "RolloutInProgress"), "True", "False", "InProgress", "Progressing"
    ),
    "canary-analysis": Expect(
        "Progressing", ("False", "RolloutInProgress"), "True", "False", "InProgress", "Progressing"
    ),
    "canary-paused": Expect(
        "Paused", ("False", "CanaryPaused"), "True", "False", "InProgress", "Suspended"
    ),
    "promoted": Expect("Ready", ("True", "Ready"), "False", "False", "Current", "Healthy"),
    "rolled-back": Expect(
        "Failed", ("False", "AnalysisFailed"), "False", "True", "Failed", "Degraded"
    ),
    "insufficient-gpu": Expect(
        "Degraded", ("False", "InsufficientGPU"), "True", "False", "InProgress", "Progressing"
    ),
    "insufficient-gpu-stalled": Expect(
        "Failed", ("False", None), "False", "True", "Failed", "Degraded"
    ),
    "model-load-failed": Expect(
        "Degraded", ("False", "ModelLoadFailed"), "True", "False", "InProgress", "Progressing"
    ),
    "model-load-failed-stalled": Expect(
        "Failed", ("False", "ModelLoadFailed"), "False", "True", "Failed", "Degraded"
    ),
}

"""What kstatus (cli-utils v0.37.2, as Flux and kpt run it) concludes from our status contract.

Hand-written ModelDeployments shaped like what the operator writes; each row pins kstatus'
real answer. The rules, from cli-utils' pkg/kstatus/status (generic.go, status.go), in order:

1. ``metadata.deletionTimestamp`` set: Terminating.
2. ``status.observedGeneration`` present and != ``metadata.generation``: InProgress. Absent:
   the check is skipped (conditions' own observedGeneration is never read).
3. The first condition, in list order, that is ``Reconciling=True`` (InProgress) or
   ``Stalled=True`` (Failed) decides.
4. ``Ready``: True is Current; False or Unknown is InProgress.
5. Nothing of the above: Current. ``phase``, ``Degraded`` and every other condition are ignored.
"""

from __future__ import annotations

import copy
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import REPO_ROOT
from e2e.gitops import kstatus
from e2e.gitops.contract import EXPECT
from gantry.api.status import ModelDeploymentStatus

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def cond(kind: str, status: str, reason: str, message: str = "", gen: int = 2) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": gen,
        "lastTransitionTime": T0,
    }


READY = [
    cond("Ready", "True", "Serving", "2/2 replicas serve model tiny version 1"),
    cond("Available", "True", "MinimumReplicasAvailable"),
    cond("ModelReady", "True", "ModelLoaded"),
    cond("Scheduled", "True", "Scheduled"),
    cond("Progressing", "False", "RolledOut"),
    cond("Degraded", "False", "AsExpected"),
    cond("Reconciling", "False", "RolledOut"),
    cond("Stalled", "False", "AsExpected"),
]

CANARY = [
    cond("Ready", "False", "CanaryInProgress", "canary step 2/4 at 25%"),
    cond("Available", "True", "MinimumReplicasAvailable"),
    cond("Reconciling", "True", "CanaryInProgress", "canary step 2/4: waiting for analysis"),
    cond("Stalled", "False", "AsExpected"),
]

ABORTED = [
    cond("Ready", "False", "CanaryAborted", "canary aborted: success rate 0.91 < 0.99"),
    cond("Available", "True", "MinimumReplicasAvailable"),
    cond("Degraded", "True", "CanaryAborted", "canary aborted: success rate 0.91 < 0.99"),
    cond("Reconciling", "False", "CanaryAborted"),
    cond("Stalled", "True", "AnalysisFailed", "canary aborted until the spec changes"),
]

NOT_READY = [
    cond("Ready", "False", "ModelNotReady", "0/2 replicas have loaded the model"),
    cond("ModelReady", "False", "ModelLoading", "loading tiny version 1"),
    cond("Reconciling", "False", "Waiting"),
    cond("Stalled", "False", "AsExpected"),
]


def md(
    conditions: list[dict[str, Any]] | None,
    *,
    generation: int = 2,
    observed: int | None = 2,
    phase: str = "Ready",
    **meta: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "serving.gantry.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "tiny", "namespace": "ml", "generation": generation, **meta},
        "spec": {"model": {"name": "tiny", "uri": "https://models.example/t.tgz", "version": "1"}},
    }
    if conditions is not None:
        status: dict[str, Any] = {"phase": phase, "conditions": copy.deepcopy(conditions)}
        if observed is not None:
            status["observedGeneration"] = observed
        # The rows must be statuses the operator could write: same field names and shapes.
        ModelDeploymentStatus.model_validate(status)
        obj["status"] = status
    return obj


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # The contract's five rows.
    ("ready and current", md(READY), "Current", "Resource is Ready"),
    (
        "reconciling",
        md(CANARY, phase="Progressing"),
        "InProgress",
        "canary step 2/4: waiting for analysis",
    ),
    ("stalled", md(ABORTED, phase="Degraded"), "Failed", "canary aborted until the spec changes"),
    ("ready false", md(NOT_READY, phase="Progressing"), "InProgress", NOT_READY[0]["message"]),
    (
        "generation not observed",
        md(READY, generation=3, observed=2),
        "InProgress",
        "ModelDeployment generation is 3, but latest observed generation is 2",
    ),
    # Edges worth knowing.
    (
        # No status at all (the operator has not seen the object yet) reads as healthy.
        "no status yet",
        md(None, generation=1),
        "Current",
        "Resource is current",
    ),
    (
        # observedGeneration 0 is compared, not treated as missing.
        "observed generation zero",
        md(READY, generation=1, observed=0),
        "InProgress",
        "ModelDeployment generation is 1, but latest observed generation is 0",
    ),
    (
        # Without status.observedGeneration, a stale Ready=True is believed: kstatus never
        # reads the conditions' own observedGeneration.
        "stale ready without observedGeneration",
        md([cond("Ready", "True", "Serving", gen=1)], generation=5, observed=None),
        "Current",
        "Resource is Ready",
    ),
    (
        # A new generation hides Stalled until the operator has observed it.
        "stalled but generation not observed",
        md(ABORTED, generation=3, observed=2),
        "InProgress",
        "ModelDeployment generation is 3, but latest observed generation is 2",
    ),
    (
        # Phase and Degraded are ignored: only Stalled makes Failed.
        "failed phase without stalled",
        md([cond("Ready", "False", "InvalidSpec", "bad"), cond("Degraded", "True", "InvalidSpec")]),
        "InProgress",
        "bad",
    ),
    (
        "ready unknown",
        md([cond("Ready", "Unknown", "Observing", "first look")]),
        "InProgress",
        "first look",
    ),
    (
        # Stalled beats Ready=True.
        "stalled while ready",
        md([cond("Ready", "True", "Serving"), cond("Stalled", "True", "Aborted", "act")]),
        "Failed",
        "act",
    ),
    (
        # Both True: the first in list order wins, so the operator must never set both.
        "reconciling listed before stalled",
        md(
            [cond("Reconciling", "True", "Moving", "moving"), cond("Stalled", "True", "S", "stuck")]
        ),
        "InProgress",
        "moving",
    ),
    (
        "stalled listed before reconciling",
        md(
            [cond("Stalled", "True", "S", "stuck"), cond("Reconciling", "True", "Moving", "moving")]
        ),
        "Failed",
        "stuck",
    ),
    (
        "being deleted",
        md(READY, deletionTimestamp=T0),
        "Terminating",
        "Resource scheduled for deletion",
    ),
]


@pytest.mark.parametrize(
    ("obj", "status", "message"),
    [pytest.param(obj, status, message, id=name) for name, obj, status, message in CASES],
)
def test_kstatus_on_model_deployment(obj: dict[str, Any], status: str, message: str) -> None:
    assert kstatus.compute(obj) == (status, message)


def test_empty_input_is_not_found() -> None:
    result = subprocess.run(
        [str(kstatus.binary())], input="# nothing\n", capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == '{"status":"NotFound","message":"no object in the input"}'


def test_unreadable_conditions_are_unknown() -> None:
    obj = md(READY)
    obj["status"]["conditions"] = "Ready"
    status, message = kstatus.compute(obj)
    assert status == "Unknown"
    assert message


def test_reads_yaml_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "md.yaml"
    path.write_text(
        "apiVersion: serving.gantry.dev/v1alpha1\nkind: ModelDeployment\n"
        "metadata: {name: tiny, generation: 4}\nstatus: {observedGeneration: 3}\n"
    )
    result = subprocess.run(
        [str(kstatus.binary()), "-f", str(path)], capture_output=True, text=True, check=True
    )
    assert '"status":"InProgress"' in result.stdout


def test_more_than_one_object_is_refused() -> None:
    result = subprocess.run(
        [str(kstatus.binary())], input="kind: A\n---\nkind: B\n", capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "more than one object" in result.stderr


def test_binary_is_found_once_per_process() -> None:
    assert kstatus.binary() is kstatus.binary()


RECORDED = sorted(
    (REPO_ROOT / "argocd" / "serving.gantry.dev" / "ModelDeployment" / "testdata").glob(
        "recorded-*.yaml"
    )
)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_recorded_objects_read_as_the_contract_says(path: Path) -> None:
    """Objects recorded from real e2e runs: kstatus agrees with the contract for each state."""
    obj = yaml.safe_load(path.read_text())
    want = EXPECT[path.stem.removeprefix("recorded-")]
    assert kstatus.compute(obj)[0] == want.kstatus


def test_every_state_of_the_contract_was_recorded() -> None:
    assert {p.stem.removeprefix("recorded-") for p in RECORDED} == set(EXPECT)


def test_an_object_of_exactly_one_buffer_is_read() -> None:
    """A JSON line of exactly 4096 bytes once read as "no object" (apimachinery's reader)."""
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    pad = 4096 - len(json.dumps({**obj, "data": {"k": ""}}))
    obj["data"] = {"k": "x" * pad}
    assert len(json.dumps(obj)) == 4096
    assert kstatus.compute(obj)[0] == "Current"

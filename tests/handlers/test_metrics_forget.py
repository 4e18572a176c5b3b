"""A deleted ModelDeployment leaves no series behind, whatever its metric's labels.

Churn (models created and deleted under new names) must not grow the registry: the soak
bench found rollout-event and verdict counters kept for every name ever seen.
"""

from __future__ import annotations

from prometheus_client import generate_latest

from gantry.metrics import OperatorMetrics


def _series_of(metrics: OperatorMetrics, name: str) -> list[str]:
    text = generate_latest(metrics.registry).decode()
    return [
        line
        for line in text.splitlines()
        if not line.startswith("#")
        and (f'name="{name}"' in line or f'modeldeployment="{name}"' in line)
    ]


def _touch_everything(metrics: OperatorMetrics, name: str) -> None:
    metrics.set_phase("ml", name, "Progressing")
    metrics.canary_weight.labels("ml", name).set(25)
    metrics.canary_step.labels("ml", name).set(1)
    metrics.count_verdict("ml", name, "Successful")
    metrics.count_verdict("ml", name, "Failed")
    metrics.count_rollout_event("ml", name, "CanaryStarted")
    metrics.count_rollout_event("ml", name, "CanaryPromoted")
    metrics.add_gpu_seconds("ml", name, {("r1", "nvidia.com/gpu"): 3.0})


def test_forget_drops_every_series_of_that_modeldeployment_only() -> None:
    metrics = OperatorMetrics()
    _touch_everything(metrics, "gone")
    _touch_everything(metrics, "kept")
    kept = _series_of(metrics, "kept")
    assert len(_series_of(metrics, "gone")) == len(kept) >= 12  # counters also have _created

    metrics.forget("ml", "gone")

    assert _series_of(metrics, "gone") == []
    assert _series_of(metrics, "kept") == kept
    assert (
        metrics.registry.get_sample_value(
            "gantry_rollout_event_total",
            {"namespace": "ml", "name": "kept", "reason": "CanaryPromoted"},
        )
        == 1.0
    )
    metrics.forget("ml", "gone")  # a replayed delete is harmless


def test_churn_leaves_the_registry_as_it_found_it() -> None:
    metrics = OperatorMetrics()
    before = generate_latest(metrics.registry).decode().count("\n")
    for i in range(50):
        _touch_everything(metrics, f"m{i}")
        metrics.forget("ml", f"m{i}")
    assert generate_latest(metrics.registry).decode().count("\n") == before

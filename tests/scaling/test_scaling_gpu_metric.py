"""gantry_gpu_seconds_total: counted per revision and resource, dropped with its ModelDeployment."""

from __future__ import annotations

from gantry.metrics import OperatorMetrics

NAME = "gantry_gpu_seconds_total"


def _value(metrics: OperatorMetrics, ns: str, md: str, rev: str, resource: str) -> float | None:
    labels = {"namespace": ns, "modeldeployment": md, "revision": rev, "resource": resource}
    return metrics.registry.get_sample_value(NAME, labels)


def test_gpu_seconds_add_up_per_revision_and_resource() -> None:
    metrics = OperatorMetrics()
    metrics.add_gpu_seconds("ml", "resnet", {("r1", "nvidia.com/gpu"): 30.0})
    metrics.add_gpu_seconds(
        "ml", "resnet", {("r1", "nvidia.com/gpu"): 15.0, ("r2", "nvidia.com/mig-1g.10gb"): 5.0}
    )
    assert _value(metrics, "ml", "resnet", "r1", "nvidia.com/gpu") == 45.0
    assert _value(metrics, "ml", "resnet", "r2", "nvidia.com/mig-1g.10gb") == 5.0


def test_forget_drops_every_gpu_series_of_that_modeldeployment_only() -> None:
    metrics = OperatorMetrics()
    metrics.add_gpu_seconds("ml", "resnet", {("r1", "nvidia.com/gpu"): 30.0})
    metrics.add_gpu_seconds("ml", "resnet", {("r2", "nvidia.com/gpu"): 10.0})
    metrics.add_gpu_seconds("ml", "bert", {("b1", "nvidia.com/gpu"): 7.0})
    metrics.add_gpu_seconds("other", "resnet", {("r1", "nvidia.com/gpu"): 3.0})

    metrics.forget("ml", "resnet")

    assert _value(metrics, "ml", "resnet", "r1", "nvidia.com/gpu") is None
    assert _value(metrics, "ml", "resnet", "r2", "nvidia.com/gpu") is None
    assert _value(metrics, "ml", "bert", "b1", "nvidia.com/gpu") == 7.0
    assert _value(metrics, "other", "resnet", "r1", "nvidia.com/gpu") == 3.0
    # Forgetting twice (a delete event replayed) is harmless.
    metrics.forget("ml", "resnet")


def test_a_recreated_modeldeployment_counts_from_zero() -> None:
    metrics = OperatorMetrics()
    metrics.add_gpu_seconds("ml", "resnet", {("r1", "nvidia.com/gpu"): 30.0})
    metrics.forget("ml", "resnet")
    metrics.add_gpu_seconds("ml", "resnet", {("r1", "nvidia.com/gpu"): 2.0})
    assert _value(metrics, "ml", "resnet", "r1", "nvidia.com/gpu") == 2.0

"""Autoscaling on the model's own load.

Pure: ``replicas`` (the HPA's replica calculator), ``behavior`` (stabilization
and rate policies), ``readings`` (Triton metrics to per-pod values), ``builtin``
(the builtin scaler's decision), ``external`` (HPA and KEDA status copied),
``gpus`` (GPUs held and GPU-seconds). I/O: ``reader`` (scrapes the pods).
"""

from gantry.scaling.builtin import BuiltinDecision, PodReading, decide_builtin
from gantry.scaling.external import from_hpa, from_scaled_object
from gantry.scaling.gpus import Allocation, accrued, allocation, gpu_status
from gantry.scaling.reader import MetricsReader, ScrapeTarget

__all__ = [
    "Allocation",
    "BuiltinDecision",
    "MetricsReader",
    "PodReading",
    "ScrapeTarget",
    "accrued",
    "allocation",
    "decide_builtin",
    "from_hpa",
    "from_scaled_object",
    "gpu_status",
]
